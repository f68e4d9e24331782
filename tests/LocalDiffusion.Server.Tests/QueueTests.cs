using System.Diagnostics;
using System.Net;
using System.Text.Json;

namespace LocalDiffusion.Server.Tests;

/// <summary>The bounded queue under load, 429, disconnects, /health and /metrics while generations run.</summary>
public sealed class QueueTests
{
    // About 5–20 s on the shapes model on a 2-core machine: long enough to be caught running, cancelled by every test that starts one.
    // Euler takes any step count up to 1000 (the shapes config's DPM++ 2M refuses 1000: its timesteps would repeat).
    private static object Slow(string prompt = "a slow green square") => new { model = "shapes", prompt, steps = 1000, scheduler = "euler", response_format = "b64_json" };

    [Fact]
    public async Task Forty_concurrent_requests_each_get_an_image_or_a_429()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], MaxQueue = 8, Concurrency = 1 });
        var threadsBefore = Process.GetCurrentProcess().Threads.Count;
        var clock = Stopwatch.StartNew();
        var requests = Enumerable.Range(0, 40).Select(async i =>
        {
            using var response = await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = $"a red circle {i}", steps = 20, seed = i });
            var text = await response.Content.ReadAsStringAsync();
            return (Status: (int)response.StatusCode, Text: text, RetryAfter: response.Headers.RetryAfter?.Delta);
        }).ToList();
        var results = await Task.WhenAll(requests).WaitAsync(TimeSpan.FromSeconds(90));
        TestContext.Current.TestOutputHelper?.WriteLine($"40 requests in {clock.Elapsed.TotalSeconds:F1} s: {results.Count(r => r.Status == 200)} images, {results.Count(r => r.Status == 429)} × 429");

        Assert.All(results, r => Assert.True(r.Status is 200 or 429, $"HTTP {r.Status}: {r.Text}"));
        var ok = results.Where(r => r.Status == 200).ToList();
        var refused = results.Where(r => r.Status == 429).ToList();
        // At least the running one and the eight waiting ones get through; the rest may, as slots free up while requests arrive.
        Assert.True(ok.Count >= 9, $"only {ok.Count} of 40 requests got an image");
        Assert.NotEmpty(refused);
        Assert.All(refused, r =>
        {
            Assert.Equal("""{"error":{"message":"The generation queue is full (8 waiting); try again shortly.","type":"rate_limit_error","param":null,"code":"queue_full"}}""", r.Text);
            Assert.Equal(TimeSpan.FromSeconds(2), r.RetryAfter);
        });

        // Every image issued is a file; nothing else was left in the output folder; the queue is empty again.
        var urls = ok.Select(r => JsonDocument.Parse(r.Text).RootElement.GetProperty("data")[0].GetProperty("url").GetString()!).ToList();
        Assert.Equal(ok.Count, urls.Distinct().Count());
        var files = Directory.GetFiles(server.Server.OutputDirectory);
        Assert.Equal(urls.Select(u => u[(u.LastIndexOf('/') + 1)..]).Order(), files.Select(Path.GetFileName).Order());
        var health = await server.HealthAsync();
        Assert.Equal(0, health.GetProperty("queue").GetProperty("waiting").GetInt32());
        Assert.Equal(0, health.GetProperty("queue").GetProperty("running").GetInt32());

        var metrics = await server.Http.GetStringAsync("metrics");
        Assert.Contains($"localdiffusion_queue_rejected_total{{model=\"shapes\"}} {refused.Count}", metrics);
        Assert.Contains($"localdiffusion_generations_total{{model=\"shapes\",outcome=\"ok\"}} {ok.Count}", metrics);
        Assert.Contains($"localdiffusion_generation_duration_seconds_count{{model=\"shapes\"}} {ok.Count}", metrics);

        var directory = server.Server.OutputDirectory;
        await server.DisposeAsync();
        Assert.False(Directory.Exists(directory), $"the temporary image folder {directory} was left behind");
        // Threads come and go with the thread pool; a leak of one per request would show as dozens more.
        Assert.True(Process.GetCurrentProcess().Threads.Count < threadsBefore + 30, $"{threadsBefore} threads before, {Process.GetCurrentProcess().Threads.Count} after");
    }

    [Fact]
    public async Task Disconnect_mid_generation_frees_the_slot_and_health_answers_meanwhile()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], MaxQueue = 0, Concurrency = 1 });
        using var client = new HttpClient { BaseAddress = server.Address };
        using var abandon = new CancellationTokenSource();
        var slow = Json.PostAsync(client, "v1/images/generations", Slow(), abandon.Token);
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("running").GetInt32() == 1, "the generation to start");

        // /health answers at once while the generation runs; a second request finds no room (max-queue 0) and gets 429.
        var clock = Stopwatch.StartNew();
        await server.HealthAsync();
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"/health took {clock.Elapsed.TotalSeconds:F1} s during a generation");
        using (var refused = await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = "x", steps = 2 }))
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);

        await abandon.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => slow);
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("running").GetInt32() == 0, "the cancelled generation to give its slot back", seconds: 10);
        using var next = await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = "a red circle", steps = 4, response_format = "b64_json" });
        await Json.ReadAsync(next, 200);
        Assert.Contains("outcome=\"cancelled\"} 1", await server.Http.GetStringAsync("metrics"));
    }

    [Fact]
    public async Task Stopping_the_server_ends_running_and_waiting_generations_at_once()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], MaxQueue = 4, Concurrency = 1 });
        var running = Json.PostAsync(server.Http, "v1/images/generations", Slow("first"));
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("running").GetInt32() == 1, "the first generation to start");
        var waiting = Json.PostAsync(server.Http, "v1/images/generations", Slow("second"));
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("waiting").GetInt32() == 1, "the second request to wait");

        var clock = Stopwatch.StartNew();
        await server.Server.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"stopping took {clock.Elapsed.TotalSeconds:F1} s");
        foreach (var request in new[] { running, waiting })
        {
            using var response = await request.WaitAsync(TimeSpan.FromSeconds(5));
            var json = await Json.ReadAsync(response, 503);
            Assert.Equal("shutting_down", Json.Error(json).GetProperty("code").GetString());
        }
    }

    [Fact]
    public async Task Waiting_request_that_disconnects_leaves_the_queue()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], MaxQueue = 1, Concurrency = 1 });
        using var client = new HttpClient { BaseAddress = server.Address };
        using var first = new CancellationTokenSource();
        using var second = new CancellationTokenSource();
        var running = Json.PostAsync(client, "v1/images/generations", Slow("first"), first.Token);
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("running").GetInt32() == 1, "the first generation to start");
        var waiting = Json.PostAsync(client, "v1/images/generations", Slow("second"), second.Token);
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("waiting").GetInt32() == 1, "the second request to wait");

        await second.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("waiting").GetInt32() == 0, "the abandoned request to leave the queue", seconds: 10);
        Assert.Equal(1, (await server.HealthAsync()).GetProperty("queue").GetProperty("running").GetInt32());
        await first.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }
}
