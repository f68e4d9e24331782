using System.Net;
using LocalDiffusion.Server.Hosting;
using LocalDiffusion.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LocalDiffusion.Server;

/// <summary>
/// LocalDiffusion over HTTP, in this process: the OpenAI Images API, an AUTOMATIC1111 API subset, a web UI at <c>/</c>,
/// <c>/health</c> and Prometheus <c>/metrics</c>, on Kestrel. Models load in the background (requests for one get 503
/// until it is ready). Dispose to stop: generations in flight are cancelled and the temporary image folder removed.
/// </summary>
public sealed class LocalDiffusionServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ServerContext _context;
    private int _disposed;

    private LocalDiffusionServer(WebApplication app, ServerContext context, Uri address)
    {
        _app = app;
        _context = context;
        Address = address;
    }

    /// <summary>The address the server listens on (with the real port when port 0 was asked for), e.g. http://127.0.0.1:7860/.</summary>
    public Uri Address { get; }

    /// <summary>The folder image URLs are served from.</summary>
    public string OutputDirectory => _context.Images.Directory;

    /// <summary>The served model ids, the default first.</summary>
    public IReadOnlyList<string> ModelIds => _context.Catalog.All.Select(m => m.Id).ToList();

    /// <summary>Completes when every model has loaded (or failed to; failures are logged and answered with 500).</summary>
    public Task WhenModelsLoaded => _context.Catalog.WhenLoaded;

    /// <summary>True when <paramref name="host"/> is reachable only from this machine.</summary>
    public static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>Loads nothing yet, binds the port, starts answering, and starts loading the models in the background.</summary>
    /// <exception cref="ArgumentException">Bad options (the message names the option).</exception>
    /// <exception cref="PortInUseException">Another program listens on the port.</exception>
    public static async Task<LocalDiffusionServer> StartAsync(ServerOptions options, ILoggerFactory? loggerFactory = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        // Checked before anything is built: a bad value must stop the server from starting (the container checks again).
        ServerContext.Check(options);

        // A thin host of what AddLocalDiffusion gives any ASP.NET Core app, with every route of its own.
        var builder = WebApplication.CreateSlimBuilder();
        if (loggerFactory is not null)
        {
            builder.Logging.ClearProviders();
            builder.Services.AddSingleton(loggerFactory);
        }
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxUploadBytes;
            kestrel.AddServerHeader = false;
            if (IsLoopback(options.Host) && options.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
                kestrel.ListenLocalhost(options.Port);
            else
                kestrel.Listen(IPAddress.Parse(options.Host == "*" ? "0.0.0.0" : options.Host), options.Port);
        });
        builder.Services.AddSingleton<IOptions<ServerOptions>>(Options.Create(options));
        LocalDiffusionServices.AddCore(builder.Services);

        var app = builder.Build();
        ServerContext context;
        try
        {
            context = app.Services.GetRequiredService<ServerContext>();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        context.Routes.OwnsEverything = true;
        if (!IsLoopback(options.Host) && options.ApiKey is null)
            context.Logger.LogWarning("Listening on {Host} without --api-key: anyone who can reach this address can generate images. Pass --api-key KEY, or bind 127.0.0.1.", options.Host);

        app.UseLocalDiffusion();
        app.MapLocalDiffusionHealth();
        app.MapLocalDiffusionMetrics();
        app.MapLocalDiffusionOpenAi();
        app.MapAutomatic1111();
        app.MapLocalDiffusionUi();

        // Models start loading once the port is bound (ModelLoadingService, on ApplicationStarted).
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (Exception e)
        {
            await app.DisposeAsync(); // disposes the context: nothing loads
            if (e is IOException { InnerException: Microsoft.AspNetCore.Connections.AddressInUseException })
                throw new PortInUseException(options.Host, options.Port, e);
            throw;
        }
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var address = new Uri(bound.EndsWith('/') ? bound : bound + "/");
        context.ImageBase = AllowedHosts.ImageBase(options, address.Port);
        context.Logger.LogInformation("LocalDiffusion server listening on {Address} (models: {Models}; queue {MaxQueue}, concurrency {Concurrency}, max batch {MaxBatch}; images in {Output})",
            address, string.Join(", ", context.Catalog.All.Select(m => m.Id)), options.MaxQueue, options.Concurrency, options.MaxBatch, context.Images.Directory);
        return new LocalDiffusionServer(app, context, address);
    }

    /// <summary>Completes when the server stops (<paramref name="cancellationToken"/> cancelled, or disposed).</summary>
    public async Task WaitForShutdownAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Stops listening, cancels generations in flight, releases the models, removes the temporary image folder.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _context.Stop();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync(); // disposes the context: models, image folder, metrics
    }
}
