using LocalDiffusion.Pipeline;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Benchmarking;

/// <summary>
/// Runs schedulers at several step counts on the same prompts and seeds and measures cost (UNet evaluations, time,
/// memory) and convergence (distance of the final latents and decoded pictures to a high-step reference solution,
/// computed once per case). Generations run one at a time so timings do not disturb each other.
/// </summary>
/// <param name="pipeline">A loaded pipeline; the benchmark does not dispose it.</param>
public sealed class SchedulerBenchmark(StableDiffusionPipeline pipeline)
{
    private readonly StableDiffusionPipeline _pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));

    /// <summary>Runs the benchmark. Bad options throw before any generation runs.</summary>
    /// <exception cref="ArgumentException">An unknown scheduler (the message lists the known ones), a step count outside 1–1000, no cases, or repeats &lt; 1.</exception>
    public async Task<SchedulerBenchmarkReport> RunAsync(SchedulerBenchmarkOptions options, IProgress<BenchmarkProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var (schedulers, reference, steps) = Resolve(options);
        var cases = options.Cases;

        var total = cases.Count * (1 + schedulers.Count * steps.Count * options.Repeats);
        var done = 0;
        async Task<GenerationResult> Generate(BenchmarkCase c, string scheduler, int n, string label)
        {
            var inner = new InlineProgress<GenerationProgress>(p =>
                progress?.Report(new BenchmarkProgress(done + (p.TotalSteps > 0 ? (double)p.Step / p.TotalSteps : 0), total, label)));
            var result = await _pipeline.GenerateAsync(Request(options, c, scheduler, n), inner, cancellationToken).ConfigureAwait(false);
            progress?.Report(new BenchmarkProgress(++done, total, label));
            return result;
        }

        // The reference once per case; it also warms ONNX Runtime up before anything is timed.
        var references = new List<GenerationResult>(cases.Count);
        foreach (var c in cases)
            references.Add(await Generate(c, reference.Id, options.Reference.Steps, $"reference {reference.DisplayName}, {options.Reference.Steps} steps").ConfigureAwait(false));
        var latentPeak = references.Max(r => Range(r.FinalLatents));

        var memory = new MemoryProbe();
        var rows = new List<SchedulerBenchmarkRow>();
        foreach (var scheduler in schedulers)
            foreach (var n in steps)
            {
                var label = $"{scheduler.DisplayName}, {n} steps";
                var latentError = new ErrorAccumulator();
                var imageError = new ErrorAccumulator();
                var times = new List<double>();
                long peak = 0, allocated = 0;
                double adherence = 0;
                GenerationResult? first = null;
                for (var i = 0; i < cases.Count; i++)
                    for (var r = 0; r < options.Repeats; r++)
                    {
                        memory.Begin();
                        var result = await Generate(cases[i], scheduler.Id, n, label).ConfigureAwait(false);
                        var (runPeak, runAllocated) = memory.End();
                        times.Add(result.Elapsed.TotalMilliseconds);
                        peak = Math.Max(peak, runPeak);
                        allocated += runAllocated;
                        if (r > 0) continue; // repeats only time: the same seed gives the same output
                        first ??= result;
                        latentError.Add(result.FinalLatents, references[i].FinalLatents);
                        imageError.Add(result.Images[0].Rgb, references[i].Images[0].Rgb);
                        adherence += options.AdherenceScorer?.Score(cases[i], result.Images[0]) ?? 0;
                    }
                var wall = Median(times);
                rows.Add(new SchedulerBenchmarkRow
                {
                    SchedulerId = scheduler.Id,
                    DisplayName = scheduler.DisplayName,
                    IsStochastic = scheduler.IsStochastic,
                    Steps = n,
                    UnetEvaluations = first!.UnetEvaluations,
                    WallMilliseconds = wall,
                    MillisecondsPerStep = wall / n,
                    PeakWorkingSetBytes = peak,
                    AllocatedBytesPerRun = allocated / times.Count,
                    LatentRmse = latentError.Rmse,
                    LatentPsnr = latentError.Psnr(latentPeak),
                    ImageRmse = imageError.Rmse,
                    ImagePsnr = imageError.Psnr(byte.MaxValue),
                    Adherence = options.AdherenceScorer is null ? null : adherence / cases.Count,
                    Sample = first.Images[0],
                });
            }

        var image = references[0].Images[0];
        return new SchedulerBenchmarkReport
        {
            Model = _pipeline.Info.Root,
            Device = _pipeline.Info.Device,
            Width = image.Width,
            Height = image.Height,
            GuidanceScale = options.GuidanceScale,
            Reference = new ReferenceSolution(reference.Id, options.Reference.Steps),
            Cases = cases,
            Repeats = options.Repeats,
            MemoryMeasurement = memory.Method,
            LatentPeak = latentPeak,
            AdherenceScorer = options.AdherenceScorer?.Name,
            Rows = rows,
            ReferenceSample = image,
        };
    }

    /// <summary>Checks the options as <see cref="RunAsync"/> does, without running anything (e.g. before loading a model).</summary>
    /// <exception cref="ArgumentException">The first problem found, as <see cref="RunAsync"/> would report it.</exception>
    public static void Validate(SchedulerBenchmarkOptions options) => _ = Resolve(options);

    private static (List<SchedulerInfo> Schedulers, SchedulerInfo Reference, List<int> Steps) Resolve(SchedulerBenchmarkOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var registry = options.Registry ?? SchedulerRegistry.Default;
        var schedulers = options.Schedulers is { Count: > 0 } names
            ? names.Select(registry.Describe).DistinctBy(i => i.Id).ToList()
            : registry.All.ToList();
        var reference = registry.Describe(options.Reference.Scheduler);
        if (options.Cases is null || options.Cases.Count == 0)
            throw new InvalidRequestException(nameof(options), null, null, _ => "The benchmark needs at least one prompt-and-seed case.");
        if (options.Steps is null || options.Steps.Count == 0)
            throw new InvalidRequestException(nameof(options), null, null, _ => "The benchmark needs at least one step count.");
        foreach (var n in options.Steps)
            if (n is < 1 or > 1000)
                throw new InvalidRequestException(nameof(options), n, null, _ => $"Step count {n} is outside 1–1000.");
        if (options.Reference.Steps is < 1 or > 1000)
            throw new InvalidRequestException(nameof(options), options.Reference.Steps, null, _ => $"The reference's step count {options.Reference.Steps} is outside 1–1000.");
        if (options.Repeats < 1)
            throw new InvalidRequestException(nameof(options), options.Repeats, null, _ => "Repeats must be at least 1.");
        return (schedulers, reference, options.Steps.Distinct().Order().ToList());
    }

    private static GenerationRequest Request(SchedulerBenchmarkOptions options, BenchmarkCase c, string scheduler, int steps) => new()
    {
        Prompt = c.Prompt,
        NegativePrompt = options.NegativePrompt,
        Seed = c.Seed,
        Steps = steps,
        Scheduler = scheduler,
        GuidanceScale = options.GuidanceScale,
        Width = options.Width,
        Height = options.Height,
    };

    private static double Range(float[] values) =>
        (double)System.Numerics.Tensors.TensorPrimitives.Max(values) - System.Numerics.Tensors.TensorPrimitives.Min(values);

    private static double Median(List<double> values)
    {
        values.Sort();
        var mid = values.Count / 2;
        return values.Count % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    }

    /// <summary>Reports on the generation's thread, in order (Progress&lt;T&gt; would post out of order).</summary>
    private sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
