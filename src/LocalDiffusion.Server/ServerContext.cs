using LocalDiffusion.Server.Files;
using LocalDiffusion.Server.Generation;
using LocalDiffusion.Server.Metrics;
using LocalDiffusion.Server.Models;
using LocalDiffusion.Server.Queue;
using Microsoft.Extensions.Logging;

namespace LocalDiffusion.Server;

/// <summary>
/// What the endpoints share: the models, the queue, the running generations, the image files, the metrics. One per
/// server, a singleton in the host's container (<see cref="Hosting.LocalDiffusionServices"/>); it owns all of them.
/// </summary>
internal sealed class ServerContext : IDisposable
{
    private readonly TaskCompletionSource _started;
    private volatile ServedModel _a1111Model;
    private int _disposed;

    private ServerContext(ServerOptions options, ModelCatalog catalog, GenerationQueue queue, ImageStore images, ServerMetrics metrics, ILogger logger, TaskCompletionSource started)
    {
        _started = started;
        Options = options;
        Catalog = catalog;
        Queue = queue;
        Images = images;
        Metrics = metrics;
        Logger = logger;
        Exporter = new PrometheusTextExporter(metrics.Meter);
        Sizes = new SizeLimit(options.MaxPixels, logger);
        ImageBase = options.PublicUrl ?? new Uri("http://127.0.0.1/");
        _a1111Model = catalog.Default;
        Upscalers = new Automatic1111.UpscalerCatalog(options.UpscalerDirectory, options.Device, options.IntraOpThreads);
    }

    /// <summary>The options checked, the model folders they name, and how each model is opened.</summary>
    /// <exception cref="ArgumentException">Bad options (the message names the option).</exception>
    /// <exception cref="DirectoryNotFoundException">A model folder is missing.</exception>
    public static (List<string> Folders, PipelineOptions Pipeline) Check(ServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var folders = options.Models.ToList();
        if (options.ModelsDirectory is { } dir) folders.AddRange(ModelCatalog.FoldersIn(dir));
        foreach (var folder in folders)
            if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Model folder {folder} does not exist.");

        // Checked here, not when the first model loads in the background: a bad value must stop the server from starting.
        var pipelineOptions = new PipelineOptions { Device = options.Device, IntraOpThreads = options.IntraOpThreads, VaeDecoderPath = options.VaeDecoderPath, PreviewDecoderPath = options.PreviewDecoderPath, FullVaePreviews = options.FullVaePreviews, LowMemory = options.LowMemory, LoraDirectory = options.LoraDirectory, EmbeddingsDirectory = options.EmbeddingsDirectory, PromptCacheEntries = options.PromptCacheEntries, VaeTiling = options.VaeTiling };
        pipelineOptions.Validate();
        return (folders, pipelineOptions);
    }

    /// <summary>
    /// Checks the options and the model folders, and sets everything up; nothing loads until <see cref="StartLoading"/>
    /// (a server that cannot listen must not spend minutes loading first).
    /// </summary>
    /// <exception cref="ArgumentException">Bad options (the message names the option).</exception>
    /// <exception cref="DirectoryNotFoundException">A model folder is missing.</exception>
    public static ServerContext Create(ServerOptions options, ILoggerFactory logs)
    {
        var (folders, pipelineOptions) = Check(options);

        var logger = logs.CreateLogger("LocalDiffusion.Server");
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = options.ModelLoadGate is { } testGate ? Task.WhenAll(started.Task, testGate) : started.Task;
        var catalog = new ModelCatalog(folders, pipelineOptions, logger, gate);
        var queue = new GenerationQueue(options.MaxQueue, options.Concurrency, options.MaxBatch);
        var images = new ImageStore(options.OutputDirectory, options.ImageTtl, logger);
        var metrics = new ServerMetrics(queue);
        return new ServerContext(options, catalog, queue, images, metrics, logger, started);
    }

    public ServerOptions Options { get; }
    public ModelCatalog Catalog { get; }
    public GenerationQueue Queue { get; }
    public ImageStore Images { get; }
    public ServerMetrics Metrics { get; }
    public PrometheusTextExporter Exporter { get; }
    public ILogger Logger { get; }
    public ActiveGenerations Active { get; } = new();
    public SizeLimit Sizes { get; }

    /// <summary>The built-in upscalers and those of <c>--upscaler-dir</c>.</summary>
    public Automatic1111.UpscalerCatalog Upscalers { get; }
    public GenerationService Generator => field ??= new GenerationService(Queue, Active, Metrics, Sizes, Stopping.Token);

    /// <summary>Where the mapped routes are, for the API key check and the image URLs.</summary>
    public Hosting.LocalDiffusionRoutes Routes { get; } = new();

    /// <summary>Where image URLs point: <see cref="ServerOptions.PublicUrl"/>, else the bound address (set once listening).</summary>
    public Uri ImageBase { get; set; }

    /// <summary>Cancelled when the server stops: waiting and running generations end instead of holding up shutdown.</summary>
    public CancellationTokenSource Stopping { get; } = new();

    /// <summary>When a client last asked /sdapi/v1/progress for the current image (Environment.TickCount64).</summary>
    public long LastPreviewPoll { get; set; } = long.MinValue / 2;

    /// <summary>The model A1111 clients get: A1111 has one loaded checkpoint, chosen with POST /sdapi/v1/options.</summary>
    public ServedModel A1111Model
    {
        get => _a1111Model;
        set => _a1111Model = value;
    }

    /// <summary>Lets the models load (once the host listens).</summary>
    public void StartLoading() => _started.TrySetResult();

    /// <summary>Cancels waiting and running generations (the host is stopping; idempotent).</summary>
    public void Stop()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        try
        {
            Stopping.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Stops generations, releases the models (waiting for any still loading), removes the temporary image folder.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Stopping.Cancel();
        // The host never started: nothing will be served, so nothing is loaded (and Dispose does not wait for a gate that never opens).
        _started.TrySetCanceled(CancellationToken.None);
        Exporter.Dispose();
        Metrics.Dispose();
        Images.Dispose();
        Catalog.Dispose();
        Upscalers.Dispose();
        Stopping.Dispose();
    }
}
