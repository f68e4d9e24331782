using LocalDiffusion.Pipeline;
using System.Diagnostics;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Benchmarking;

/// <summary>What <see cref="BatchBenchmark"/> measures: one model, one size, one step count, so many queued requests.</summary>
public sealed record BatchBenchmarkOptions : BenchmarkRunOptions
{
    /// <summary>Queued requests (one image each, different prompts and seeds), run one by one and then as one batch.</summary>
    public int Requests { get; init; } = 8;
}

/// <summary>The outcome of <see cref="BatchBenchmark.RunAsync"/>: images per second, one by one and batched.</summary>
public sealed record BatchBenchmarkReport : BenchmarkReportHeader
{
    /// <summary>The scheduler that ran.</summary>
    public required string Scheduler { get; init; }

    /// <summary>Classifier-free guidance scale.</summary>
    public required float GuidanceScale { get; init; }

    /// <summary>Requests per round.</summary>
    public required int Requests { get; init; }

    /// <summary>Wall time of each timed round of the requests one after another (seconds).</summary>
    public required IReadOnlyList<double> SequentialSeconds { get; init; }

    /// <summary>Wall time of each timed round of the requests as one batch (seconds).</summary>
    public required IReadOnlyList<double> BatchedSeconds { get; init; }

    /// <summary>Images per second one after another (median round).</summary>
    public double SequentialImagesPerSecond => Requests / Median(SequentialSeconds);

    /// <summary>Images per second batched (median round).</summary>
    public double BatchedImagesPerSecond => Requests / Median(BatchedSeconds);

    /// <summary>Batched over one-by-one throughput.</summary>
    public double Speedup => BatchedImagesPerSecond / SequentialImagesPerSecond;

    /// <summary>
    /// The median over rounds of (one-by-one time / batched time) of the same round: the two run back to back, so on a
    /// machine whose load changes this ratio is steadier than the ratio of the medians.
    /// </summary>
    public double MedianRoundSpeedup => Median(SequentialSeconds.Zip(BatchedSeconds, (s, b) => s / b).ToList());

    /// <summary>Largest |difference| between a request's final latents batched and alone (0: bit-identical).</summary>
    public required float MaxLatentDifference { get; init; }

    private static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}

/// <summary>
/// Dynamic batching's gain: the same queued requests run one after another (<see cref="StableDiffusionPipeline.GenerateAsync"/>)
/// and as one batch (<see cref="StableDiffusionPipeline.GenerateBatchAsync"/>), rounds alternating, and whether the
/// batched results equal the ones alone.
/// </summary>
public static class BatchBenchmark
{
    private static readonly string[] Prompts =
    [
        "a red circle on a blue background", "a yellow star on a purple background", "a large green triangle in the center on a white background",
        "a black cross on the right on an orange background", "a pink square at the bottom on a gray background", "two squares, one green and one yellow, black background",
        "a white circle and a red star on a blue background", "blue background with a small red circle at the top left",
    ];

    /// <summary>Runs the benchmark.</summary>
    public static async Task<BatchBenchmarkReport> RunAsync(BatchBenchmarkOptions options, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Requests is < 1 or > 64) throw new InvalidRequestException(nameof(options), options.Requests, null, _ => "Requests must be between 1 and 64.");
        if (options.Repeats < 1) throw new InvalidRequestException(nameof(options), options.Repeats, null, _ => "Repeats must be at least 1.");
        progress?.Report("loading");
        using var pipeline = StableDiffusionPipeline.Load(options.Model, (options.Engine ?? new PipelineOptions()) with
        {
            Device = options.Device, IntraOpThreads = options.IntraOpThreads,
        });
        var requests = Enumerable.Range(0, options.Requests).Select(i => new GenerationRequest
        {
            Prompt = Prompts[i % Prompts.Length], Steps = options.Steps, GuidanceScale = options.GuidanceScale, Seed = i + 1,
            Width = options.Width, Height = options.Height, Scheduler = options.Scheduler,
        }).ToList();
        var items = requests.Select(r => new GenerationBatchItem(r, null, cancellationToken)).ToList();

        async Task<GenerationResult[]> Sequential()
        {
            var results = new GenerationResult[requests.Count];
            for (var i = 0; i < requests.Count; i++) results[i] = await pipeline.GenerateAsync(requests[i], null, cancellationToken);
            return results;
        }
        Task<GenerationResult[]> Batched() => Task.WhenAll(pipeline.GenerateBatchAsync(items));

        progress?.Report("warm-up: one round each");
        var alone = await Sequential();
        var together = await Batched();
        var difference = 0f;
        for (var i = 0; i < alone.Length; i++)
            for (var k = 0; k < alone[i].FinalLatents.Length; k++)
                difference = MathF.Max(difference, MathF.Abs(alone[i].FinalLatents[k] - together[i].FinalLatents[k]));

        List<double> sequential = [], batched = [];
        for (var r = 0; r < options.Repeats; r++)
        {
            progress?.Report($"round {r + 1} of {options.Repeats}: {requests.Count} requests one by one, then as one batch");
            sequential.Add(await Time(Sequential));
            batched.Add(await Time(Batched));
        }
        return new BatchBenchmarkReport
        {
            Date = DateTime.UtcNow,
            Machine = BenchmarkReportHeader.ThisMachine,
            OnnxRuntime = BenchmarkReportHeader.OnnxRuntimeVersion,
            Model = options.Model,
            Device = pipeline.Info.Device,
            Width = alone[0].Images[0].Width,
            Height = alone[0].Images[0].Height,
            Steps = options.Steps,
            Scheduler = alone[0].Scheduler,
            GuidanceScale = options.GuidanceScale,
            Requests = requests.Count,
            SequentialSeconds = sequential,
            BatchedSeconds = batched,
            MaxLatentDifference = difference,
        };
    }

    private static async Task<double> Time(Func<Task<GenerationResult[]>> run)
    {
        var clock = Stopwatch.StartNew();
        await run();
        return clock.Elapsed.TotalSeconds;
    }
}
