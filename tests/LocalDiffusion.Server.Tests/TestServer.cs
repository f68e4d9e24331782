using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace LocalDiffusion.Server.Tests;

/// <summary>Where the repository and its models are, seen from the test binary.</summary>
internal static class Repo
{
    public static string Root { get; } = Find();

    public static string Model(params string[] parts) => Path.Combine([Root, "models", .. parts]);

    public static string Shapes => Model("shapes");

    public static string Tiny => Model("test", "tiny");

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LocalDiffusion.sln"))) return dir.FullName;
        throw new InvalidOperationException($"LocalDiffusion.sln not found above {AppContext.BaseDirectory}");
    }
}

/// <summary>A real server on a loopback port chosen by the OS, with an HTTP client pointed at it.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    private TestServer(LocalDiffusionServer server, ILoggerFactory logs)
    {
        Server = server;
        Logs = logs;
        Http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(60) };
    }

    public LocalDiffusionServer Server { get; }
    public HttpClient Http { get; }
    public Uri Address => Server.Address;
    private ILoggerFactory Logs { get; }

    /// <summary>shapes (the default) and tiny, unless <paramref name="options"/> names others.</summary>
    public static async Task<TestServer> StartAsync(ServerOptions? options = null, bool waitForModels = true)
    {
        options ??= new ServerOptions();
        if (options.Models.Count == 0 && options.ModelsDirectory is null) options = options with { Models = [Repo.Shapes, Repo.Tiny] };
        options = options with { Port = 0, Device = "cpu" };
        var logs = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning));
        var server = await LocalDiffusionServer.StartAsync(options, logs);
        if (waitForModels) await server.WhenModelsLoaded;
        return new TestServer(server, logs);
    }

    /// <summary>/health's body, whatever its status (503 while no model is ready).</summary>
    public async Task<JsonElement> HealthAsync()
    {
        using var response = await Http.GetAsync("health");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    /// <summary>Waits until <paramref name="condition"/> holds on /health, or fails after <paramref name="seconds"/>.</summary>
    public async Task WaitForHealthAsync(Func<JsonElement, bool> condition, string what, double seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var health = await HealthAsync();
            if (condition(health)) return;
            if (DateTime.UtcNow > deadline) Assert.Fail($"Timed out after {seconds} s waiting for {what}; /health: {health}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Logs.Dispose();
    }
}

/// <summary>One server shared by the tests that only send ordinary requests.</summary>
public sealed class SharedServer : IAsyncLifetime
{
    internal TestServer Instance { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Instance = await TestServer.StartAsync();

    public async ValueTask DisposeAsync() => await Instance.DisposeAsync();
}
