using System.Text.Json.Serialization;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Benchmarking;

/// <summary>The outcome of a <see cref="SchedulerBenchmark"/> run: one row per scheduler × step count, schedulers in registry order.</summary>
public sealed record SchedulerBenchmarkReport
{
    /// <summary>The model folder.</summary>
    public required string Model { get; init; }

    /// <summary>The execution provider it ran on.</summary>
    public required string Device { get; init; }

    /// <summary>Image width in pixels.</summary>
    public required int Width { get; init; }

    /// <summary>Image height in pixels.</summary>
    public required int Height { get; init; }

    /// <summary>Classifier-free guidance scale.</summary>
    public required float GuidanceScale { get; init; }

    /// <summary>The reference solution, with the scheduler as its registry id.</summary>
    public required ReferenceSolution Reference { get; init; }

    /// <summary>The prompts and seeds every row was averaged over.</summary>
    public required IReadOnlyList<BenchmarkCase> Cases { get; init; }

    /// <summary>Timed runs per case and row.</summary>
    public required int Repeats { get; init; }

    /// <summary>How <see cref="SchedulerBenchmarkRow.PeakWorkingSetBytes"/> was measured.</summary>
    public required string MemoryMeasurement { get; init; }

    /// <summary>The PSNR peak for latents: the largest max − min of the reference latents over the cases.</summary>
    public required double LatentPeak { get; init; }

    /// <summary>The adherence scorer's name, or null when none was used.</summary>
    public string? AdherenceScorer { get; init; }

    /// <summary>The results.</summary>
    public required IReadOnlyList<SchedulerBenchmarkRow> Rows { get; init; }

    /// <summary>The reference solution's picture of the first case.</summary>
    [JsonIgnore]
    public GeneratedImage? ReferenceSample { get; init; }

    /// <summary>The step counts, ascending.</summary>
    [JsonIgnore]
    public IReadOnlyList<int> StepCounts => Rows.Select(r => r.Steps).Distinct().Order().ToList();

    /// <summary>The scheduler ids in report order.</summary>
    [JsonIgnore]
    public IReadOnlyList<string> SchedulerIds => Rows.Select(r => r.SchedulerId).Distinct().ToList();
}
