namespace LocalDiffusion.Benchmarking;

/// <summary>What every pipeline-level benchmark runs: one model at one size, step count, guidance and scheduler.</summary>
public abstract record BenchmarkRunOptions
{
    /// <summary>The model folder.</summary>
    public required string Model { get; init; }

    /// <summary>Execution provider (as <see cref="PipelineOptions.Device"/>).</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Image width; null: the model's native size.</summary>
    public int? Width { get; init; }

    /// <summary>Image height; null: the model's native size.</summary>
    public int? Height { get; init; }

    /// <summary>Denoising steps.</summary>
    public int Steps { get; init; } = 20;

    /// <summary>Timed repetitions after an untimed first one; the report gives their medians.</summary>
    public int Repeats { get; init; } = 3;

    /// <summary>Classifier-free guidance scale.</summary>
    public float GuidanceScale { get; init; } = 7.5f;

    /// <summary>Scheduler id; null: the model's own.</summary>
    public string? Scheduler { get; init; }

    /// <summary>CPU threads per operator; null: ONNX Runtime's default.</summary>
    public int? IntraOpThreads { get; init; }

    /// <summary>Further load options (arena, memory pattern, session configuration, CUDA/TensorRT options, VAE tiling);
    /// <see cref="PipelineOptions.Device"/>, threads and the cache folder are the benchmark's own.</summary>
    public PipelineOptions? Engine { get; init; }
}
