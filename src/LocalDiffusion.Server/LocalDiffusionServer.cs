using System.Net;
using LocalDiffusion.Server.Automatic1111;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Files;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Metrics;
using LocalDiffusion.Server.Models;
using LocalDiffusion.Server.OpenAi;
using LocalDiffusion.Server.Queue;
using LocalDiffusion.Server.Web;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

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
    private readonly PrometheusTextExporter _exporter;
    private int _disposed;

    private LocalDiffusionServer(WebApplication app, ServerContext context, PrometheusTextExporter exporter, Uri address)
    {
        _app = app;
        _context = context;
        _exporter = exporter;
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
        options.Validate();
        var folders = options.Models.ToList();
        if (options.ModelsDirectory is { } dir) folders.AddRange(ModelCatalog.FoldersIn(dir));
        foreach (var folder in folders)
            if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Model folder {folder} does not exist.");

        // Checked here, not when the first model loads in the background: a bad value must stop the server from starting.
        var pipelineOptions = new PipelineOptions { Device = options.Device, IntraOpThreads = options.IntraOpThreads, VaeDecoderPath = options.VaeDecoderPath, LowMemory = options.LowMemory, LoraDirectory = options.LoraDirectory, PromptCacheEntries = options.PromptCacheEntries };
        pipelineOptions.Validate();

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
        builder.Services.ConfigureHttpJsonOptions(json => json.SerializerOptions.Encoder = ErrorWriter.Json.Encoder);
        if (options.CorsOrigins.Count > 0)
            builder.Services.AddCors(cors => cors.AddDefaultPolicy(p => p.WithOrigins([.. options.CorsOrigins]).AllowAnyHeader().AllowAnyMethod()));

        var app = builder.Build();
        var logs = app.Services.GetRequiredService<ILoggerFactory>();
        var logger = logs.CreateLogger("LocalDiffusion.Server");
        if (!IsLoopback(options.Host) && options.ApiKey is null)
            logger.LogWarning("Listening on {Host} without --api-key: anyone who can reach this address can generate images. Pass --api-key KEY, or bind 127.0.0.1.", options.Host);

        // Models start loading only once the port is bound: a server that cannot listen must not spend minutes loading first.
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = options.ModelLoadGate is { } testGate ? Task.WhenAll(listening.Task, testGate) : listening.Task;
        var catalog = new ModelCatalog(folders, pipelineOptions, logger, gate);
        var queue = new GenerationQueue(options.MaxQueue, options.Concurrency, options.MaxBatch);
        var images = new ImageStore(options.OutputDirectory, options.ImageTtl, logger);
        var metrics = new ServerMetrics(queue);
        var exporter = new PrometheusTextExporter(metrics.Meter);
        var context = new ServerContext(options, catalog, queue, images, metrics, logger);

        app.UseMiddleware<RequestLog>();
        app.UseMiddleware<ErrorMiddleware>();
        app.UseMiddleware<BrowserGuard>(options);
        app.UseMiddleware<StatusCodeErrors>();
        app.UseRouting(); // after StatusCodeErrors, which lets HEAD match GET routes
        if (options.CorsOrigins.Count > 0) app.UseCors();
        app.UseMiddleware<ApiKeyCheck>(options);
        app.MapGet("/health", (HttpContext http) => Health(catalog, queue));
        app.MapGet("/metrics", () => Results.Text(exporter.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        ImagesEndpoints.Map(app, context);
        SdApiEndpoints.Map(app, context);
        QueueEndpoints.Map(app, context);
        WebUiEndpoints.Map(app);

        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (Exception e)
        {
            listening.TrySetCanceled(CancellationToken.None);
            exporter.Dispose();
            metrics.Dispose();
            images.Dispose();
            catalog.Dispose();
            await app.DisposeAsync();
            if (e is IOException { InnerException: Microsoft.AspNetCore.Connections.AddressInUseException })
                throw new PortInUseException(options.Host, options.Port, e);
            throw;
        }
        listening.TrySetResult();
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var address = new Uri(bound.EndsWith('/') ? bound : bound + "/");
        context.ImageBase = AllowedHosts.ImageBase(options, address.Port);
        logger.LogInformation("LocalDiffusion server listening on {Address} (models: {Models}; queue {MaxQueue}, concurrency {Concurrency}, max batch {MaxBatch}; images in {Output})",
            address, string.Join(", ", catalog.All.Select(m => m.Id)), options.MaxQueue, options.Concurrency, options.MaxBatch, images.Directory);
        return new LocalDiffusionServer(app, context, exporter, address);
    }

    // Ready (200) while at least one model can generate, as a load balancer's or Kubernetes' readiness check wants it;
    // 503 while every model is still loading or failed, with the same body saying which.
    private static IResult Health(ModelCatalog catalog, GenerationQueue queue)
    {
        var ready = catalog.All.Any(m => m.IsReady);
        var status = ready ? "ok" : catalog.All.Any(m => m.State == "loading") ? "loading" : "unavailable";
        return Results.Json(new
        {
            status,
            models = catalog.All.Select(m => new { id = m.Id, state = m.State }),
            queue = new { waiting = queue.Waiting, running = queue.Running, capacity = queue.Capacity, concurrency = queue.Concurrency, max_batch = queue.MaxBatchImages },
        }, statusCode: ready ? 200 : 503);
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
        await _context.Stopping.CancelAsync();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        _exporter.Dispose();
        _context.Metrics.Dispose();
        _context.Images.Dispose();
        _context.Catalog.Dispose();
        _context.Stopping.Dispose();
    }
}
