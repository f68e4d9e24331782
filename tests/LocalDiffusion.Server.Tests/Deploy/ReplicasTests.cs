using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using OpenAI;
using OpenAI.Images;

namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary>
/// Three <c>serve</c> replicas (real processes, one shared --output-dir, --public-url at the balancer) behind Debian's
/// nginx, driven by the official OpenAI SDK with its retry policy on, while one replica is killed and another drained.
/// </summary>
public sealed class ReplicasTests : IDisposable
{
    private const int Requests = 60;
    private readonly string _shared = Directory.CreateTempSubdirectory("localdiffusion-replicas-").FullName;

    public void Dispose() => Directory.Delete(_shared, recursive: true);

    [Fact]
    public async Task Sixty_url_requests_through_nginx_survive_a_killed_and_a_drained_replica()
    {
        Assert.SkipUnless(File.Exists(NginxBalancer.Binary), $"{NginxBalancer.Binary} is absent: install Debian's nginx (apt-get install nginx) to run the replica test.");
        var ports = new[] { Loopback.FreePort(), Loopback.FreePort(), Loopback.FreePort() };
        using var balancer = await NginxBalancer.StartAsync(ports);
        var replicas = ports.Select(port => CliProcess.Start(
            "serve", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--model", Repo.Shapes, "--device", "cpu",
            "--output-dir", _shared, "--public-url", balancer.Address.ToString(), "--max-queue", "4")).ToList();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
            for (var i = 0; i < replicas.Count; i++)
                await Loopback.WaitForOkAsync(http, $"http://127.0.0.1:{ports[i]}/health", () => replicas[i].Output);

            var sdk = new OpenAIClientOptions
            {
                Endpoint = new Uri(balancer.Address, "v1"),
                RetryPolicy = new ClientRetryPolicy(maxRetries: 5), // the SDK's own retries, for when nginx has no replica left to try
                NetworkTimeout = TimeSpan.FromSeconds(120),
            };
            sdk.AddPolicy(new JsonFieldPolicy("steps", 6), PipelinePosition.PerCall); // fewer steps keep the test short
            var client = new ImageClient("shapes", new ApiKeyCredential("not-needed"), sdk);
            var urls = new ConcurrentDictionary<int, Uri>();
            var failures = new ConcurrentQueue<string>();
            var next = -1;
            async Task Worker()
            {
                for (var k = Interlocked.Increment(ref next); k < Requests; k = Interlocked.Increment(ref next))
                {
                    try
                    {
                        var options = new ImageGenerationOptions { Size = new GeneratedImageSize(64, 64), ResponseFormat = GeneratedImageFormat.Uri };
                        var image = await client.GenerateImageAsync($"a red circle on a blue background, number {k}", options);
                        urls[k] = image.Value.ImageUri;
                    }
                    catch (Exception e) when (e is ClientResultException or HttpRequestException)
                    {
                        failures.Enqueue($"request {k}: {e.Message}");
                    }
                }
            }
            var workers = Enumerable.Range(0, 6).Select(_ => Task.Run(Worker)).ToList();

            // Mid-run: one replica dies (SIGKILL: its requests in flight break off), another is drained (SIGTERM: it
            // answers 503 to what it still holds and stops); nginx passes both kinds on to the replica left.
            await WaitUntil(() => urls.Count >= 15, "15 answers", balancer);
            replicas[0].Kill();
            await WaitUntil(() => urls.Count >= 30, "30 answers", balancer);
            replicas[1].Terminate();
            await Task.WhenAll(workers);
            await replicas[1].WaitForExitAsync(60);

            // What the balancer did, for the log: requests it passed on after a break-off, a 503 or a 429.
            var passedOn = balancer.AccessLog.Split('\n').Where(l => l.Contains("statuses=\"") && l.Contains(", ", StringComparison.Ordinal)).ToList();
            TestContext.Current.TestOutputHelper?.WriteLine($"{passedOn.Count} requests passed on to another replica:\n{string.Join('\n', passedOn)}");
            Assert.True(failures.IsEmpty, $"lost requests:\n{string.Join('\n', failures)}\nnginx:\n{balancer.AccessLog}\n{balancer.ErrorLog}");
            Assert.Equal(Requests, urls.Count);
            Assert.Equal(Requests, urls.Values.Distinct().Count());
            foreach (var url in urls.Values)
            {
                Assert.StartsWith(new Uri(balancer.Address, "v1/images/files/").ToString(), url.ToString());
                var png = await http.GetByteArrayAsync(url); // through the balancer: whichever replica is left serves any replica's file
                Assert.Equal((64, 64), (Images.Decode(png).Width, Images.Decode(png).Height));
            }
        }
        finally
        {
            foreach (var replica in replicas) replica.Dispose();
        }
    }

    private static async Task WaitUntil(Func<bool> condition, string what, NginxBalancer balancer)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"no {what} within 120 s; nginx:\n{balancer.AccessLog}\n{balancer.ErrorLog}");
            await Task.Delay(10);
        }
    }
}
