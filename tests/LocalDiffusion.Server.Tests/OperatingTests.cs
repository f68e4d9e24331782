using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// What an operator and a load balancer read: /health as a readiness check (503 until a model can generate), metrics
/// that tell a client's bad request from a server failure, the request log naming a disconnect, and the size cap
/// (--max-pixels) with its warnings.
/// </summary>
public sealed class OperatingTests
{
    [Fact]
    public async Task Health_is_503_until_a_model_is_ready_and_when_none_could_load()
    {
        var gate = new TaskCompletionSource();
        await using (var loading = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], ModelLoadGate = gate.Task }, waitForModels: false))
        {
            using var before = await loading.Http.GetAsync("health");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, before.StatusCode);
            Assert.Equal("loading", (await Json.ReadAsync(before, 503)).GetProperty("status").GetString());
            gate.SetResult();
            await loading.Server.WhenModelsLoaded;
            Assert.Equal("ok", (await Json.ReadAsync(await loading.Http.GetAsync("health"), 200)).GetProperty("status").GetString());
        }

        var broken = Directory.CreateTempSubdirectory("ld-broken-model-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(broken, "model_index.json"), "{}");
            await using var failed = await TestServer.StartAsync(new ServerOptions { Models = [broken] });
            var health = await Json.ReadAsync(await failed.Http.GetAsync("health"), 503);
            Assert.Equal("unavailable", health.GetProperty("status").GetString());
            Assert.Equal("failed", health.GetProperty("models")[0].GetProperty("state").GetString());
        }
        finally
        {
            Directory.Delete(broken, recursive: true);
        }
    }

    [Fact]
    public async Task Metrics_count_a_refused_request_apart_from_a_server_error()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny] });
        // Refused by the engine once it had the slot (an edit at strength 0): the client's error.
        var form = new MultipartFormDataContent { { new StringContent("x"), "prompt" }, { new StringContent("0"), "strength" } };
        form.Add(new ByteArrayContent(Images.Picture(64, 64)) { Headers = { ContentType = new("image/png") } }, "image", "x.png");
        await Json.ReadAsync(await server.Http.PostAsync("v1/images/edits", form), 400);
        var metrics = await server.Http.GetStringAsync("metrics");
        Assert.Contains("localdiffusion_generations_total{model=\"tiny\",outcome=\"invalid_request\"} 1", metrics);
        Assert.DoesNotContain("outcome=\"error\"", metrics);
    }

    [Fact]
    public async Task A_client_that_leaves_is_logged_as_disconnected_not_200()
    {
        var lines = new ConcurrentQueue<string>();
        using var logs = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Information).AddProvider(new Capture(lines)));
        await using var server = await LocalDiffusionServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], Port = 0, Device = "cpu" }, logs);
        await server.WhenModelsLoaded;
        using var http = new HttpClient { BaseAddress = server.Address };
        using (var leave = new CancellationTokenSource())
        {
            var request = Json.PostAsync(http, "v1/images/generations", new { prompt = "x", steps = 1000, scheduler = "euler" }, leave.Token);
            await Task.Delay(500);
            await leave.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        }
        var deadline = DateTime.UtcNow.AddSeconds(20);
        static bool IsRequestLine(string l) => l.Contains("POST /v1/images/generations", StringComparison.Ordinal) && l.Contains("model=", StringComparison.Ordinal);
        while (DateTime.UtcNow < deadline && !lines.Any(IsRequestLine))
            await Task.Delay(20);
        var line = Assert.Single(lines, IsRequestLine);
        Assert.Contains("POST /v1/images/generations disconnected", line);
        Assert.DoesNotContain(" 200 ", line);
    }

    [Fact]
    public async Task Sizes_far_above_native_warn_and_over_the_cap_are_refused_before_they_queue()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        // shapes draws 64×64: 128×128 is 4× its area (the default cap), served with a warning; 96×96 (2.25×) too.
        var at4 = await Json.ReadAsync(await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = "x", size = "128x128", steps = 2, response_format = "b64_json" }), 200);
        Assert.Contains("4× the native area of 'shapes' (64x64)", at4.GetProperty("warnings")[0].GetString());
        var native = await Json.ReadAsync(await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = "x", size = "64x64", steps = 2, response_format = "b64_json" }), 200);
        Assert.Empty(native.GetProperty("warnings").EnumerateArray());

        // What DALL-E-era clients send by default: refused at once, naming size and the cap.
        var dalle = Json.Error(await Json.ReadAsync(await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = "x", n = 2, size = "1024x1024" }), 400));
        Assert.Equal("size", dalle.GetProperty("param").GetString());
        Assert.Equal("size_too_large", dalle.GetProperty("code").GetString());
        Assert.Equal("1024x1024 is 1048576 pixels, over this server's cap of 16384 for 'shapes' (native size 64x64; the cap is --max-pixels, by default 4× the native area). Ask for 'auto' or a size near 64x64.",
            dalle.GetProperty("message").GetString());
        var a1111 = Json.Error(await Json.ReadAsync(await Json.PostAsync(server.Http, "sdapi/v1/txt2img", new { prompt = "x", width = 512, height = 512 }), 400));
        Assert.Equal("width", a1111.GetProperty("param").GetString());

        await using var capped = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], MaxPixels = 1_048_576 });
        var big = await Json.ReadAsync(await Json.PostAsync(capped.Http, "v1/images/generations", new { prompt = "x", size = "256x256", steps = 1, response_format = "b64_json" }), 200);
        Assert.Contains("16× the native area", big.GetProperty("warnings")[0].GetString());
    }

    [Fact]
    public async Task An_unavailable_execution_provider_is_the_contracts_500_as_the_clis_exit_2()
    {
        // The CPU build has no CUDA provider: loading fails with ExecutionProviderUnavailableException, which the CLI
        // answers with exit 2 and the server, from the same table, with 500 provider_unavailable.
        await using var server = await LocalDiffusionServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], Port = 0, Device = "cuda" });
        await server.WhenModelsLoaded;
        using var http = new HttpClient { BaseAddress = server.Address };
        var error = Json.Error(await Json.ReadAsync(await Json.PostAsync(http, "v1/images/generations", new { prompt = "x" }), 500));
        Assert.Equal("provider_unavailable", error.GetProperty("code").GetString());
        Assert.Equal(2, LocalDiffusion.Errors.ErrorContract.For(LocalDiffusion.Errors.ErrorKind.ProviderUnavailable).ExitCode);
    }

    private sealed class Capture(ConcurrentQueue<string> lines) : ILoggerProvider, ILogger
    {
        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue(formatter(state, exception));

        public void Dispose()
        {
        }
    }
}
