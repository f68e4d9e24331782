using LocalDiffusion.Pipeline;
using System.Diagnostics;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Benchmarking;

/// <summary>What <see cref="PipelineBenchmark"/> measures: one model, one size, one step count.</summary>
public sealed record PipelineBenchmarkOptions : BenchmarkRunOptions
{
    /// <summary>The prompt.</summary>
    public string Prompt { get; init; } = "a red circle on a blue background";

    /// <summary>Whether to time a load without the optimised-model cache too (one more full optimisation: about a
    /// minute for an SD-1.5-size model on 2 cores); default true.</summary>
    public bool MeasureUncachedLoad { get; init; } = true;

    /// <summary>A cache folder to use and keep (a second run then loads "cold" from it too); null: a fresh temporary
    /// folder, deleted afterwards.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Whether to measure a large fp32 MatMul's GFLOP/s in the same process (the floor a step is compared with); default true.</summary>
    public bool MeasureMatMul { get; init; } = true;
}

/// <summary>Time of each stage of one generation, in milliseconds.</summary>
/// <param name="Tokenize">Tokenizer.</param>
/// <param name="TextEncoder">Text encoder.</param>
/// <param name="Prepare">Initial noise and scheduler set-up.</param>
/// <param name="UnetCall">Median UNet call (inputs written, ONNX Runtime, output read).</param>
/// <param name="FirstUnetCall">The first UNet call of the generation.</param>
/// <param name="SchedulerStep">Median time per evaluation outside the UNet call (input scaling, guidance, scheduler step).</param>
/// <param name="VaeDecode">VAE decoder and conversion to RGB8.</param>
/// <param name="PngEncode">PNG encoding of the first image.</param>
/// <param name="Total">The whole generation as the pipeline timed it.</param>
/// <param name="EngineOverheadShare">Share of the denoising time outside ONNX Runtime's Run.</param>
/// <param name="UnetCalls">Every UNet call in order.</param>
public sealed record StageTimes(double Tokenize, double TextEncoder, double Prepare, double UnetCall, double FirstUnetCall,
    double SchedulerStep, double VaeDecode, double PngEncode, double Total, double EngineOverheadShare, IReadOnlyList<double> UnetCalls);

/// <summary>The outcome of <see cref="PipelineBenchmark.RunAsync"/>.</summary>
public sealed record PipelineBenchmarkReport : BenchmarkReportHeader
{
    /// <summary>UNet evaluations per generation.</summary>
    public required int Evaluations { get; init; }

    /// <summary>The scheduler.</summary>
    public required string Scheduler { get; init; }

    /// <summary>Guidance scale.</summary>
    public required float GuidanceScale { get; init; }

    /// <summary>Timed generations after the first.</summary>
    public required int Repeats { get; init; }

    /// <summary>GFLOP/s of a 2048³ fp32 MatMul through ONNX Runtime on the CPU, same threads, measured before loading; null: not measured.</summary>
    public double? MatMulGflops { get; init; }

    /// <summary>The engine options that differ from the defaults (arena, memory pattern, session configuration).</summary>
    public string? Tuning { get; init; }

    /// <summary>Seconds to load without the optimised-model cache (the engine before it had one); NaN: not measured.</summary>
    public required double LoadUncachedSeconds { get; init; }

    /// <summary>Seconds to load the first time with the cache: optimising and storing the graphs.</summary>
    public required double LoadColdSeconds { get; init; }

    /// <summary>Seconds to load from the cache (every later start).</summary>
    public required double LoadWarmSeconds { get; init; }

    /// <summary>The first generation after loading (it pays for first-call effects).</summary>
    public required StageTimes FirstRun { get; init; }

    /// <summary>Medians over the repeats.</summary>
    public required StageTimes Steady { get; init; }

    /// <summary>Peak resident memory of the process while generating, in bytes.</summary>
    public required long PeakResidentBytes { get; init; }

    /// <summary>How <see cref="PeakResidentBytes"/> was measured.</summary>
    public required string MemoryMeasurement { get; init; }

    /// <summary>
    /// Managed bytes allocated per evaluation once denoising is under way (see
    /// <see cref="GenerationTimings.StepAllocatedBytes"/>; median over the repeats).
    /// </summary>
    public required double AllocatedBytesPerStep { get; init; }
}

/// <summary>
/// Times a model's load (without the optimised-model cache, storing it, from it) and its generations stage by
/// stage, with peak memory and allocations per step: <c>localdiffusion bench pipeline</c>.
/// </summary>
public static class PipelineBenchmark
{
    /// <summary>Runs the benchmark; the cache it loads from is a fresh temporary folder, deleted afterwards.</summary>
    public static async Task<PipelineBenchmarkReport> RunAsync(PipelineBenchmarkOptions options, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Steps is < 1 or > 1000) throw new InvalidRequestException(nameof(options), options.Steps, null, _ => "Steps must be between 1 and 1000.");
        if (options.Repeats < 1) throw new InvalidRequestException(nameof(options), options.Repeats, null, _ => "Repeats must be at least 1.");
        var cache = options.CacheDirectory ?? Path.Combine(Path.GetTempPath(), "ld-bench-cache-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            PipelineOptions Load(bool useCache) => (options.Engine ?? new PipelineOptions()) with
            {
                Device = options.Device, IntraOpThreads = options.IntraOpThreads, CacheDirectory = cache, UseModelCache = useCache,
            };
            double? gflops = null;
            if (options.MeasureMatMul)
            {
                progress?.Report("measuring a 2048x2048 fp32 MatMul");
                gflops = MatMulProbe.MeasureGflops(options.IntraOpThreads);
            }
            var uncached = double.NaN;
            if (options.MeasureUncachedLoad)
            {
                // The first load in a process also starts ONNX Runtime and compiles the engine's code: not a load time.
                progress?.Report("warming up the process");
                StableDiffusionPipeline.Load(options.Model, Load(false)).Dispose();
                progress?.Report("loading without the cache");
                uncached = Time(() => StableDiffusionPipeline.Load(options.Model, Load(false)).Dispose());
            }
            progress?.Report("loading, storing the optimised graphs");
            var cold = Time(() => StableDiffusionPipeline.Load(options.Model, Load(true)).Dispose());
            progress?.Report("loading from the cache");
            StableDiffusionPipeline? pipeline = null;
            var warm = Time(() => pipeline = StableDiffusionPipeline.Load(options.Model, Load(true)));
            using var loaded = pipeline!;

            var request = new GenerationRequest
            {
                Prompt = options.Prompt, Steps = options.Steps, GuidanceScale = options.GuidanceScale, Seed = 1,
                Width = options.Width, Height = options.Height, Scheduler = options.Scheduler,
            };
            var memory = new MemoryProbe();
            memory.Begin();
            progress?.Report("first generation");
            var first = await loaded.GenerateAsync(request, null, cancellationToken).ConfigureAwait(false);
            var firstTimes = Stages(first);
            var runs = new List<(StageTimes Times, GenerationResult Result)>();
            for (var r = 0; r < options.Repeats; r++)
            {
                progress?.Report($"generation {r + 1} of {options.Repeats}");
                var result = await loaded.GenerateAsync(request, null, cancellationToken).ConfigureAwait(false);
                runs.Add((Stages(result), result));
            }
            var (peak, _) = memory.End();

            return new PipelineBenchmarkReport
            {
                Date = DateTime.UtcNow,
                Machine = BenchmarkReportHeader.ThisMachine,
                OnnxRuntime = BenchmarkReportHeader.OnnxRuntimeVersion,
                Model = loaded.Info.Root,
                Device = loaded.Info.Device,
                Width = first.Images[0].Width,
                Height = first.Images[0].Height,
                Steps = options.Steps,
                Evaluations = first.UnetEvaluations,
                Scheduler = first.Scheduler,
                GuidanceScale = options.GuidanceScale,
                Repeats = options.Repeats,
                MatMulGflops = gflops,
                Tuning = Describe(options.Engine),
                LoadUncachedSeconds = uncached,
                LoadColdSeconds = cold,
                LoadWarmSeconds = warm,
                FirstRun = firstTimes,
                Steady = Median(runs.Select(r => r.Times).ToList()),
                PeakResidentBytes = peak,
                MemoryMeasurement = memory.Method,
                AllocatedBytesPerStep = MedianOf(runs.Select(r => r.Result.Timings.StepAllocatedBytes / (double)Math.Max(1, r.Result.Timings.StepAllocationSteps))),
            };
        }
        finally
        {
            if (options.CacheDirectory is null)
                try { Directory.Delete(cache, recursive: true); } catch (DirectoryNotFoundException) { } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static string? Describe(PipelineOptions? engine)
    {
        if (engine is null) return null;
        var parts = new List<string>();
        if (engine.PrepackWeights) parts.Add("prepack_weights=1");
        if (engine.EnableCpuMemArena is { } arena) parts.Add($"cpu_mem_arena={(arena ? 1 : 0)}");
        if (engine.EnableMemoryPattern is { } pattern) parts.Add($"memory_pattern={(pattern ? 1 : 0)}");
        if (engine.CpuArenaExtendStrategy is { } strategy) parts.Add($"arena_extend_strategy={strategy}");
        if (engine.LowMemory) parts.Add("low_memory=1");
        if (engine.MaxUnetBatch is { } rows) parts.Add($"max_unet_batch={rows}");
        if (!engine.FuseAttention) parts.Add("fuse_attention=0");
        if (engine.VaeTiling.Mode != VaeTiling.Auto) parts.Add($"vae_tiling={engine.VaeTiling.Mode.ToString().ToLowerInvariant()} ({engine.VaeTiling.TileLatentSize * 8} px tiles)");
        if (engine.VaeDecoderPath is { } vae) parts.Add($"vae={vae}");
        foreach (var (key, value) in engine.SessionConfig ?? new Dictionary<string, string>()) parts.Add($"{key}={value}");
        return parts.Count == 0 ? null : string.Join(", ", parts);
    }

    private static double Time(Action action)
    {
        var clock = Stopwatch.StartNew();
        action();
        return clock.Elapsed.TotalSeconds;
    }

    private static StageTimes Stages(GenerationResult result)
    {
        var t = result.Timings;
        var clock = Stopwatch.StartNew();
        _ = result.Images[0].EncodePng(new Dictionary<string, string> { ["parameters"] = result.Images[0].Parameters ?? "" });
        var png = clock.Elapsed.TotalMilliseconds;
        var calls = t.UnetCalls.Select(c => c.TotalMilliseconds).ToList();
        return new StageTimes(
            t.Tokenize.TotalMilliseconds, t.TextEncoder.TotalMilliseconds, t.Prepare.TotalMilliseconds,
            MedianOf(calls), calls.Count > 0 ? calls[0] : 0, MedianOf(t.SchedulerSteps.Select(s => s.TotalMilliseconds)),
            t.VaeDecode.TotalMilliseconds, png, result.Elapsed.TotalMilliseconds, t.EngineOverheadShare, calls);
    }

    private static StageTimes Median(List<StageTimes> runs) => new(
        MedianOf(runs.Select(r => r.Tokenize)), MedianOf(runs.Select(r => r.TextEncoder)), MedianOf(runs.Select(r => r.Prepare)),
        MedianOf(runs.Select(r => r.UnetCall)), MedianOf(runs.Select(r => r.FirstUnetCall)), MedianOf(runs.Select(r => r.SchedulerStep)),
        MedianOf(runs.Select(r => r.VaeDecode)), MedianOf(runs.Select(r => r.PngEncode)), MedianOf(runs.Select(r => r.Total)),
        MedianOf(runs.Select(r => r.EngineOverheadShare)), runs[^1].UnetCalls);

    private static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        if (sorted.Count == 0) return 0;
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
