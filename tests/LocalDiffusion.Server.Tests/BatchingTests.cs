using System.Text.Json;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// Dynamic batching (<c>--max-batch</c>): requests that wait while a generation runs are let through together and denoised
/// in one engine batch, and each client still gets exactly the picture its request gets alone.
/// </summary>
public sealed class BatchingTests
{
    // Holds the only slot (5–20 s on the shapes model) while the others queue up behind it; cancelled once they do.
    private static readonly object Blocker = new { model = "shapes", prompt = "a slow green square", steps = 1000, scheduler = "euler", response_format = "b64_json" };

    private static object OpenAi(string prompt, long seed, int n = 1) =>
        new { model = "shapes", prompt, seed, n, steps = 12, scheduler = "dpmpp_2m", size = "64x64", response_format = "b64_json" };

    private static object A1111(string prompt, long seed) =>
        new { prompt, seed, steps = 12, sampler_name = "DPM++ 2M", cfg_scale = 5, width = 64, height = 64 };

    [Fact]
    public async Task Waiting_OpenAI_and_A1111_requests_run_as_one_batch_and_each_gets_its_picture_alone()
    {
        await using var blocked = await BlockedServer.StartAsync(maxBatch: 8);
        var server = blocked.Server;

        (string Path, object Body)[] requests =
        [
            ("v1/images/generations", OpenAi("a red circle on a blue background", 1)),
            ("v1/images/generations", OpenAi("a yellow star on a purple background", 2, n: 2)),
            ("sdapi/v1/txt2img", A1111("a black cross on the right on an orange background", 3)),
        ];
        var batched = requests.Select(r => Json.PostAsync(server.Http, r.Path, r.Body)).ToList();
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("waiting").GetInt32() == requests.Length, "the requests to queue up");
        await blocked.ReleaseAsync();

        var together = new List<List<byte[]>>();
        foreach (var response in await Task.WhenAll(batched))
        {
            using (response)
            {
                var json = await Json.ReadAsync(response, 200);
                Assert.Equal("3", Assert.Single(response.Headers.GetValues("x-localdiffusion-batch-size")));
                together.Add(Pngs(json));
            }
        }
        var metrics = await server.Http.GetStringAsync("metrics");
        // Three requests finished in a batch of three (sum 9), after the cancelled blocker (not recorded: it did not finish).
        Assert.Contains("localdiffusion_batch_size_sum{model=\"shapes\"} 9", metrics);
        Assert.Contains("localdiffusion_batch_size_count{model=\"shapes\"} 3", metrics);

        // The same requests one at a time (nothing waits, so each runs alone): the same pictures, pixel for pixel.
        for (var i = 0; i < requests.Length; i++)
        {
            using var response = await Json.PostAsync(server.Http, requests[i].Path, requests[i].Body);
            var json = await Json.ReadAsync(response, 200);
            Assert.Equal("1", Assert.Single(response.Headers.GetValues("x-localdiffusion-batch-size")));
            var alone = Pngs(json);
            Assert.Equal(alone.Count, together[i].Count);
            for (var k = 0; k < alone.Count; k++)
                Assert.Equal(Images.Decode(alone[k]).Rgb, Images.Decode(together[i][k]).Rgb);
        }
    }

    [Fact]
    public async Task With_max_batch_1_waiting_requests_run_one_by_one()
    {
        await using var blocked = await BlockedServer.StartAsync(maxBatch: 1);
        var server = blocked.Server;
        var waiting = Enumerable.Range(0, 2).Select(i => Json.PostAsync(server.Http, "v1/images/generations", OpenAi("a red circle", i))).ToList();
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("waiting").GetInt32() == 2, "the requests to queue up");
        await blocked.ReleaseAsync();
        foreach (var response in await Task.WhenAll(waiting))
            using (response)
            {
                await Json.ReadAsync(response, 200);
                Assert.Equal("1", Assert.Single(response.Headers.GetValues("x-localdiffusion-batch-size")));
            }
    }

    [Fact]
    public async Task A_batch_holds_at_most_max_batch_images_and_incompatible_requests_wait_their_turn()
    {
        await using var blocked = await BlockedServer.StartAsync(maxBatch: 4);
        var server = blocked.Server;
        // In arrival order: 2 + 2 images fill a batch of 4; the third pair would make 6; the 10-step one has other timesteps.
        object[] bodies = [OpenAi("a red circle", 1, n: 2), OpenAi("a blue star", 2, n: 2), OpenAi("a green cross", 3, n: 2),
            new { model = "shapes", prompt = "a pink square", seed = 4, steps = 10, scheduler = "dpmpp_2m", size = "64x64", response_format = "b64_json" }];
        var waiting = new List<Task<HttpResponseMessage>>();
        foreach (var body in bodies)
        {
            waiting.Add(Json.PostAsync(server.Http, "v1/images/generations", body));
            var count = waiting.Count;
            await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("waiting").GetInt32() == count, "the request to queue up");
        }
        await blocked.ReleaseAsync();

        var sizes = new List<string>();
        foreach (var response in await Task.WhenAll(waiting))
            using (response)
            {
                await Json.ReadAsync(response, 200);
                sizes.Add(Assert.Single(response.Headers.GetValues("x-localdiffusion-batch-size")));
            }
        // The first two together; the third cannot join them (6 images) and is not compatible with the fourth: alone, then the fourth alone.
        Assert.Equal(["2", "2", "1", "1"], sizes);
    }

    [Fact]
    public async Task A_client_that_leaves_a_running_batch_ends_only_its_own_request()
    {
        await using var blocked = await BlockedServer.StartAsync(maxBatch: 8);
        var server = blocked.Server;
        using var leaving = new CancellationTokenSource();
        using var leaverClient = new HttpClient { BaseAddress = server.Address };
        // Long enough (a few seconds) to be caught running; euler takes any step count.
        object Long(long seed) => new { model = "shapes", prompt = "a red circle", seed, steps = 400, scheduler = "euler", size = "64x64", response_format = "b64_json" };
        var staying = new[] { 1L, 2L }.Select(seed => Json.PostAsync(server.Http, "v1/images/generations", Long(seed))).ToList();
        var leaver = Json.PostAsync(leaverClient, "v1/images/generations", Long(3), leaving.Token);
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("waiting").GetInt32() == 3, "the requests to queue up");
        await blocked.ReleaseAsync();
        // The client sees the blocker cancelled before the server has stopped it, and until then /sdapi/v1/progress is the
        // blocker's: the queue is empty only once its slot has passed to the batch.
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("waiting").GetInt32() == 0, "the batch to leave the queue");
        // The batch is denoising once /sdapi/v1/progress (the oldest running request's) moves.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while ((await Json.GetAsync(server.Http, "sdapi/v1/progress")).GetProperty("progress").GetDouble() < 0.02)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "the batch did not start denoising");
            await Task.Delay(20);
        }

        await leaving.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaver);
        foreach (var response in await Task.WhenAll(staying))
            using (response)
            {
                await Json.ReadAsync(response, 200);
                Assert.Equal("3", Assert.Single(response.Headers.GetValues("x-localdiffusion-batch-size")));
            }
        var metrics = await server.Http.GetStringAsync("metrics");
        Assert.Contains("localdiffusion_generations_total{model=\"shapes\",outcome=\"ok\"} 2", metrics);
        Assert.Contains("localdiffusion_generations_total{model=\"shapes\",outcome=\"cancelled\"} 2", metrics); // the blocker and the leaver
    }

    private static List<byte[]> Pngs(JsonElement json) =>
        json.TryGetProperty("images", out var a1111)
            ? a1111.EnumerateArray().Select(i => Convert.FromBase64String(i.GetString()!)).ToList()
            : json.GetProperty("data").EnumerateArray().Select(d => Convert.FromBase64String(d.GetProperty("b64_json").GetString()!)).ToList();

    /// <summary>
    /// A server (one slot, a queue of 8, --max-batch N) whose slot a long generation holds, so the requests a test sends
    /// wait behind it; <see cref="ReleaseAsync"/> cancels it and the waiting ones are let through together.
    /// </summary>
    private sealed class BlockedServer : IAsyncDisposable
    {
        private readonly CancellationTokenSource _blocking = new();
        private readonly HttpClient _client;
        private readonly Task<HttpResponseMessage> _blocker;

        private BlockedServer(TestServer server)
        {
            Server = server;
            _client = new HttpClient { BaseAddress = server.Address };
            _blocker = Json.PostAsync(_client, "v1/images/generations", Blocker, _blocking.Token);
        }

        public TestServer Server { get; }

        public static async Task<BlockedServer> StartAsync(int maxBatch)
        {
            var blocked = new BlockedServer(await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], MaxQueue = 8, Concurrency = 1, MaxBatch = maxBatch }));
            await blocked.Server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("running").GetInt32() == 1, "the blocking generation to start");
            return blocked;
        }

        /// <summary>Cancels the blocking generation; the client sees its request cancelled.</summary>
        public async Task ReleaseAsync()
        {
            await _blocking.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _blocker);
        }

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            _client.Dispose();
            _blocking.Dispose();
        }
    }
}
