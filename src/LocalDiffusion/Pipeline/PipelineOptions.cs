namespace LocalDiffusion;

/// <summary>How a pipeline is loaded: execution provider and threading.</summary>
public sealed record PipelineOptions
{
    /// <summary><c>auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml</c>; auto tries GPUs, then the CPU.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Threads ONNX Runtime uses inside one operator (null: its default, one per physical core); at most the
    /// machine's logical cores.</summary>
    public int? IntraOpThreads { get; init; }

    /// <summary>Threads ONNX Runtime uses across operators (null: its default); at most the machine's logical cores.</summary>
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

    /// <summary>Checks the options before anything is loaded and parses <see cref="Device"/>.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names the option.</exception>
    internal Onnx.ExecutionDevice Validate()
    {
        CheckThreads(nameof(IntraOpThreads), IntraOpThreads);
        CheckThreads(nameof(InterOpThreads), InterOpThreads);
        try
        {
            return Onnx.ExecutionDevice.Parse(Device ?? throw new ArgumentException("Device must not be null (use \"auto\").", nameof(Device)));
        }
        catch (ArgumentException e) when (e.ParamName != nameof(Device))
        {
            throw new ArgumentException(e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal), nameof(Device), e);
        }
    }

    // More threads than cores only makes the operators fight over them (200 threads on 2 cores: 20× slower).
    private static void CheckThreads(string name, int? value)
    {
        var cores = Environment.ProcessorCount;
        if (value is { } v && (v < 1 || v > cores))
            throw new ArgumentOutOfRangeException(name, v,
                $"{name} is {v}; it must be between 1 and {cores}, the logical cores of this machine (or unset for ONNX Runtime's default).");
    }
}
