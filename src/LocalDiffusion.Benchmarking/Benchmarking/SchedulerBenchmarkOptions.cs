using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Benchmarking;

/// <summary>What <see cref="SchedulerBenchmark"/> runs: schedulers × step counts over prompt-and-seed cases.</summary>
public sealed record SchedulerBenchmarkOptions
{
    /// <summary>Scheduler ids or names; null or empty: every scheduler in the registry.</summary>
    public IReadOnlyList<string>? Schedulers { get; init; }

    /// <summary>Step counts to run each scheduler at (reported in ascending order).</summary>
    public IReadOnlyList<int> Steps { get; init; } = [4, 8, 16, 32];

    /// <summary>The prompts and seeds; each row's errors are averaged over all of them.</summary>
    public required IReadOnlyList<BenchmarkCase> Cases { get; init; }

    /// <summary>The high-step solution each result is compared with (computed once per case).</summary>
    public ReferenceSolution Reference { get; init; } = ReferenceSolution.Default;

    /// <summary>Classifier-free guidance scale.</summary>
    public float GuidanceScale { get; init; } = 7.5f;

    /// <summary>The negative prompt (used when guidance &gt; 1).</summary>
    public string NegativePrompt { get; init; } = "";

    /// <summary>Image width; null: the model's native size.</summary>
    public int? Width { get; init; }

    /// <summary>Image height; null: the model's native size.</summary>
    public int? Height { get; init; }

    /// <summary>Timed runs per case and row; times are the median. Outputs are deterministic, so errors come from the first run.</summary>
    public int Repeats { get; init; } = 1;

    /// <summary>Scores prompt adherence when set (e.g. the shapes model's analyser); null: no adherence column.</summary>
    public IAdherenceScorer? AdherenceScorer { get; init; }

    /// <summary>Where scheduler names are looked up; null: <see cref="SchedulerRegistry.Default"/>. Use the registry the pipeline was loaded with.</summary>
    public SchedulerRegistry? Registry { get; init; }
}
