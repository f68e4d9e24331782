using LocalDiffusion.Server.Files;
using LocalDiffusion.Server.Generation;
using LocalDiffusion.Server.Metrics;
using LocalDiffusion.Server.Models;
using LocalDiffusion.Server.Queue;

namespace LocalDiffusion.Server;

/// <summary>What the endpoints share: the models, the queue, the running generations, the image files, the metrics.</summary>
internal sealed class ServerContext(ServerOptions options, ModelCatalog catalog, GenerationQueue queue, ImageStore images, ServerMetrics metrics, Microsoft.Extensions.Logging.ILogger logger)
{
    private volatile ServedModel _a1111Model = catalog.Default;

    public ServerOptions Options { get; } = options;
    public ModelCatalog Catalog { get; } = catalog;
    public GenerationQueue Queue { get; } = queue;
    public ImageStore Images { get; } = images;
    public ServerMetrics Metrics { get; } = metrics;
    public ActiveGenerations Active { get; } = new();
    public SizeLimit Sizes { get; } = new(options.MaxPixels, logger);
    public GenerationService Generator => field ??= new GenerationService(Queue, Active, Metrics, Sizes, Stopping.Token);

    /// <summary>Where image URLs point: <see cref="ServerOptions.PublicUrl"/>, else the bound address (set once listening).</summary>
    public Uri ImageBase { get; set; } = options.PublicUrl ?? new Uri("http://127.0.0.1/");

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
}
