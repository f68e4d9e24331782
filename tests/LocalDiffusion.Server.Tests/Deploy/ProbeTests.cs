using System.Net;
using System.Text.RegularExpressions;
using k8s.Models;
using LocalDiffusion.Cli;
using Spectre.Console;

namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary>
/// The Deployment's container, run for real: serve started with the manifest's own args (moved to loopback, a
/// temporary folder for the volumes) answers its probes, its drain check, its metrics and its Host names as the
/// manifests expect.
/// </summary>
public sealed partial class ProbeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("localdiffusion-probes-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [GeneratedRegex(@"at (http://127\.0\.0\.1:\d+/)")]
    private static partial Regex AddressLine();

    [Fact]
    public async Task Serve_with_the_deployments_args_answers_its_probes_drain_metrics_and_host_names()
    {
        var deployment = Manifests.File("base/deployment.yaml").Single<V1Deployment>();
        var container = deployment.Spec.Template.Spec.Containers[0];
        var models = Directory.CreateDirectory(Path.Combine(_dir, "models")).FullName;
        Directory.CreateSymbolicLink(Path.Combine(models, "shapes"), Repo.Shapes);
        var images = Path.Combine(_dir, "images");
        // Only where it listens and where its volumes are change; the API key comes from the Secret there.
        var args = container.Args.Select(a => a switch
        {
            "--host=0.0.0.0" => "--host=127.0.0.1",
            _ when a.StartsWith("--port=", StringComparison.Ordinal) => "--port=0",
            "--models-dir=/models" => $"--models-dir={models}",
            "--output-dir=/images" => $"--output-dir={images}",
            _ => a,
        }).Concat(["--device=cpu", "--api-key=sesame"]).ToArray();
        Assert.Equal(container.Args.Count + 2, args.Length);

        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Synchronized(output)), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No });
        console.Profile.Width = 400;
        using var stop = new CancellationTokenSource();
        var run = CliApp.RunAsync(args, console, TextWriter.Null, stop.Token);
        Match match;
        while (!(match = AddressLine().Match(output.ToString())).Success)
        {
            Assert.False(run.IsCompleted, $"serve stopped: {output}");
            await Task.Delay(20);
        }
        using var http = new HttpClient { BaseAddress = new Uri(match.Groups[1].Value) };

        // Readiness 503 until the model is ready, then 200; liveness 200 all along, loading or not.
        while (true)
        {
            using var live = await http.GetAsync(ProbePaths.Liveness);
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            using var ready = await http.GetAsync("/health");
            if (ready.StatusCode == HttpStatusCode.OK) break;
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            await Task.Delay(20);
        }
        using (var live = await http.GetAsync(ProbePaths.Liveness))
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);

        // The preStop drain's test: an idle server's /health says so in the words it greps for.
        Assert.Contains(ProbePaths.IdleQueue, await http.GetStringAsync("/health"));

        // /metrics: the names KEDA's query uses; the key is needed (the ServiceMonitor sends it).
        using (var refused = await http.GetAsync("/metrics"))
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        using var metricsRequest = new HttpRequestMessage(HttpMethod.Get, "/metrics") { Headers = { { "Authorization", "Bearer sesame" } } };
        using var metrics = await http.SendAsync(metricsRequest);
        var text = await metrics.Content.ReadAsStringAsync();
        Assert.Matches($"(?m)^{ProbePaths.QueueWaitingMetric} 0$", text);
        Assert.Matches($"(?m)^{ProbePaths.QueueRunningMetric} 0$", text);

        // Host names: the Service's (--allowed-host) and the public one (--public-url) are served; others are refused.
        var hosts = container.Args.Where(a => a.StartsWith("--allowed-host=", StringComparison.Ordinal)).Select(a => a["--allowed-host=".Length..])
            .Append(new Uri(container.Args.Single(a => a.StartsWith("--public-url=", StringComparison.Ordinal))["--public-url=".Length..]).Host);
        foreach (var host in hosts.Append("other.example.org"))
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/health") { Headers = { Host = host } };
            using var response = await http.SendAsync(request);
            Assert.True((response.StatusCode == HttpStatusCode.Forbidden) == (host == "other.example.org"), $"Host: {host} got {(int)response.StatusCode}");
        }

        await stop.CancelAsync();
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task While_the_model_loads_the_liveness_path_answers_and_readiness_and_the_api_do_not()
    {
        var gate = new TaskCompletionSource();
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], ApiKey = "sesame", ModelLoadGate = gate.Task }, waitForModels: false);

        using (var live = await server.Http.GetAsync(ProbePaths.Liveness))
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        using (var ready = await server.Http.GetAsync("/health"))
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        // Why not /v1/models, which does answer 200 while loading: with --api-key a probe (which cannot read a Secret) gets 401.
        using (var models = await server.Http.GetAsync("/v1/models"))
            Assert.Equal(HttpStatusCode.Unauthorized, models.StatusCode);

        gate.SetResult();
        await server.Server.WhenModelsLoaded;
        using (var ready = await server.Http.GetAsync("/health"))
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }
}
