namespace LocalDiffusion;

/// <summary>How a pipeline is loaded: execution provider and threading.</summary>
public sealed record PipelineOptions
{
    /// <summary><c>auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml</c>; auto tries GPUs, then the CPU.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Threads ONNX Runtime uses inside one operator (null: its default, one per physical core).</summary>
    public int? IntraOpThreads { get; init; }

    /// <summary>Threads ONNX Runtime uses across operators (null: its default).</summary>
    public int? InterOpThreads { get; init; }

    /// <summary>
    /// The optimised-model cache folder (see <see cref="Onnx.ModelCache"/>); null: <c>$LOCALDIFFUSION_CACHE</c>, else
    /// the platform's cache folder (<see cref="Onnx.ModelCache.DefaultDirectory"/>).
    /// </summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Whether optimised graphs are stored and reused between starts (default true).</summary>
    public bool UseModelCache { get; init; } = true;

    /// <summary>Tiled VAE decoding (diffusers' enable_tiling): by default on for images over 1024², in 512-pixel tiles.</summary>
    public VaeTilingOptions VaeTiling { get; init; } = new();

    /// <summary>Where scheduler names are looked up; null: <see cref="Schedulers.SchedulerRegistry.Default"/> (register plug-ins there or pass your own).</summary>
    public Schedulers.SchedulerRegistry? Schedulers { get; init; }
}
