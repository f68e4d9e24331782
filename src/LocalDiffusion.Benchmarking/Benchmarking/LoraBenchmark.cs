using LocalDiffusion.Pipeline;
using System.Diagnostics;
using LocalDiffusion.Adapters;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Benchmarking;

/// <summary>What <see cref="LoraBenchmark"/> measures: one model, one LoRA, one size.</summary>
public sealed record LoraBenchmarkOptions : BenchmarkRunOptions
{
    /// <summary>The LoRA (.safetensors) to apply.</summary>
    public required string Lora { get; init; }

    /// <summary>The weight it is applied with first; the switch goes to half of it.</summary>
    public float Weight { get; init; } = 1f;

    /// <summary>The prompt.</summary>
    public string Prompt { get; init; } = "a red circle on a blue background";

    /// <summary>A cache folder to use and keep; null: a fresh temporary folder, deleted afterwards.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>
    /// How LoRA sessions get their weights: <c>override</c> (the engine's way, handed over when the session is created) or
    /// <c>rewrite</c> (issue #19's alternative, measured here only: a weights-only rewrite of the cached graph written per
    /// set and opened from disk; a set written before opens without merging again).
    /// </summary>
    public string Variant { get; init; } = "override";
}

/// <summary>One generation of the sequence, with where its time went.</summary>
/// <param name="Label">What it did (no LoRA, apply, same again, change weight, back to none).</param>
/// <param name="Loras">The LoRA set it ran with ("" for none).</param>
/// <param name="TotalSeconds">The whole generation as the pipeline timed it.</param>
/// <param name="OutsideStagesSeconds">Time outside tokenizing, encoding, preparing, denoising and decoding: switching the LoRA set (merging the weights) and waiting for it.</param>
/// <param name="TextEncoderSeconds">Text encoder stage (its session opening included when it was closed).</param>
/// <param name="FirstUnetCallSeconds">The first UNet call (its session opening included when it was closed).</param>
/// <param name="LaterUnetCallSeconds">Median of the later UNet calls (NaN with one step).</param>
/// <param name="VaeDecodeSeconds">VAE decoding.</param>
/// <param name="PeakResidentBytes">Peak resident memory of the process during this generation.</param>
/// <param name="LatentsEqualBaseline">Whether its final latents equal the first no-LoRA generation's bit for bit.</param>
/// <param name="ManagedCommittedBytes">Memory the .NET garbage collector held committed after it (GCMemoryInfo.TotalCommittedBytes):
/// what of the resident set is the managed heap (merged LoRA weights, garbage not yet returned) rather than ONNX Runtime's.</param>
/// <param name="UnetSession">Where the UNet session it opened last came from: <c>cache</c> (the optimised-model cache's graph,
/// with the LoRA's merged weights handed over), <c>source</c> (the model file optimised again) or <c>stored</c> (optimised
/// and stored in the cache).</param>
public sealed record LoraBenchmarkRow(string Label, string Loras, double TotalSeconds, double OutsideStagesSeconds, double TextEncoderSeconds,
    double FirstUnetCallSeconds, double LaterUnetCallSeconds, double VaeDecodeSeconds, long PeakResidentBytes, bool LatentsEqualBaseline,
    long ManagedCommittedBytes, string UnetSession)
{
    /// <summary>Seconds opening the UNet's LoRA session took (InferenceSession construction; 0 without LoRA).</summary>
    public double UnetOpenSeconds { get; init; }

    /// <summary>Variant <c>rewrite</c>: seconds writing the changed tensors' data file, flushed to disk.</summary>
    public double RewriteDataSeconds { get; init; }

    /// <summary>Variant <c>rewrite</c>: seconds writing the graph copy that points at it, flushed to disk.</summary>
    public double RewriteGraphSeconds { get; init; }

    /// <summary>Bytes written to disk for the LoRA set (variant <c>rewrite</c>; 0 for overrides).</summary>
    public long BytesWritten { get; init; }

    /// <summary>SHA-256 of the final latents' bytes (first 16 hex digits), to compare the variants' runs bit for bit.</summary>
    public string LatentsSha256 { get; init; } = "";
}

/// <summary>The outcome of <see cref="LoraBenchmark.RunAsync"/>.</summary>
public sealed record LoraBenchmarkReport : BenchmarkReportHeader
{
    /// <summary>The engine options that differ from the defaults.</summary>
    public string? Tuning { get; init; }

    /// <summary>How the LoRA sessions got their weights (<see cref="LoraBenchmarkOptions.Variant"/>).</summary>
    public string Variant { get; init; } = "override";

    /// <summary>The LoRA file.</summary>
    public required string Lora { get; init; }

    /// <summary>Bytes of the weights a text-to-image generation loads (UNet, text encoders, VAE decoder), as stored.</summary>
    public required long WeightBytes { get; init; }

    /// <summary>Seconds to load the pipeline (from the optimised-model cache when it held the model).</summary>
    public required double LoadSeconds { get; init; }

    /// <summary>The generations in order.</summary>
    public required IReadOnlyList<LoraBenchmarkRow> Rows { get; init; }

    /// <summary>How <see cref="LoraBenchmarkRow.PeakResidentBytes"/> was measured.</summary>
    public required string MemoryMeasurement { get; init; }

    /// <summary>The 1-minute load average before and after the runs (other processes share the machine).</summary>
    public required string LoadAverage { get; init; }
}

/// <summary>
/// What applying, changing and removing a LoRA costs: a warm-up and a no-LoRA generation, then the LoRA applied, the
/// same set again, its weight changed, and no LoRA again (whose latents must equal the first no-LoRA generation's bit for
/// bit), each timed stage by stage with its peak memory: <c>localdiffusion bench lora</c>.
/// </summary>
public static class LoraBenchmark
{
    /// <summary>Runs the benchmark.</summary>
    public static async Task<LoraBenchmarkReport> RunAsync(LoraBenchmarkOptions options, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Steps is < 1 or > 1000) throw new InvalidRequestException(nameof(options), options.Steps, null, _ => "Steps must be between 1 and 1000.");
        if (options.Variant is not ("override" or "rewrite"))
            throw new InvalidRequestException(nameof(options.Variant), options.Variant, "override or rewrite", called => $"{called} must be override or rewrite, not '{options.Variant}'.");
        if (!File.Exists(options.Lora)) throw new InvalidRequestException(nameof(options.Lora), options.Lora, null, _ => $"LoRA file not found: {options.Lora}");
        var cache = options.CacheDirectory ?? Path.Combine(Path.GetTempPath(), "ld-bench-cache-" + Guid.NewGuid().ToString("N")[..8]);
        // Disposed after the pipeline: it deletes the rewrites it wrote.
        using var probe = new LoraWeightsRewrite(options.Variant == "rewrite");
        LoraWeightsRewrite.Current = probe; // this async flow only: the pipeline's sessions below see it
        try
        {
            var engine = (options.Engine ?? new PipelineOptions()) with
            {
                Device = options.Device, IntraOpThreads = options.IntraOpThreads, CacheDirectory = cache, UseModelCache = true,
            };
            var loadAverage = LoadAverage();
            progress?.Report("loading (optimising and storing the graphs when the cache lacks them)");
            var clock = Stopwatch.StartNew();
            using var pipeline = StableDiffusionPipeline.Load(options.Model, engine);
            var load = clock.Elapsed.TotalSeconds;

            var request = new GenerationRequest
            {
                Prompt = options.Prompt, Steps = options.Steps, GuidanceScale = options.GuidanceScale, Seed = 1,
                Width = options.Width, Height = options.Height, Scheduler = options.Scheduler,
            };
            LoraAdapter[] With(float weight) => [new LoraAdapter(options.Lora, weight)];
            var plan = new (string Label, LoraAdapter[] Loras)[]
            {
                ("warm-up, no LoRA", []),
                ("no LoRA", []),
                ("apply the LoRA", With(options.Weight)),
                ("same LoRA again", With(options.Weight)),
                ("change its weight", With(options.Weight / 2)),
                ("back to no LoRA", []),
                ("re-apply the LoRA", With(options.Weight)),
            };
            var memory = new MemoryProbe();
            var rows = new List<LoraBenchmarkRow>();
            float[]? baseline = null;
            GenerationResult? first = null;
            foreach (var (label, loras) in plan)
            {
                progress?.Report(label);
                probe.Reset();
                memory.Begin();
                var result = await pipeline.GenerateAsync(request with { Loras = loras }, null, cancellationToken).ConfigureAwait(false);
                var (peak, _) = memory.End();
                first ??= result;
                if (label == "no LoRA") baseline = result.FinalLatents;
                rows.Add(Row(label, loras, result, peak, baseline, pipeline.LastOpenCacheStatus("unet") switch
                {
                    Onnx.ModelCacheStatus.Hit => "cache",
                    Onnx.ModelCacheStatus.Stored => "stored",
                    _ => "source",
                }) with
                {
                    UnetOpenSeconds = probe.UnetOpenSeconds, RewriteDataSeconds = probe.DataSeconds, RewriteGraphSeconds = probe.GraphSeconds,
                    BytesWritten = probe.BytesWritten,
                    LatentsSha256 = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(
                        System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.FinalLatents.AsSpan())))[..16].ToLowerInvariant(),
                });
            }
            loadAverage += " → " + LoadAverage();

            return new LoraBenchmarkReport
            {
                Date = DateTime.UtcNow,
                Machine = BenchmarkReportHeader.ThisMachine,
                OnnxRuntime = BenchmarkReportHeader.OnnxRuntimeVersion,
                Model = pipeline.Info.Root,
                Device = pipeline.Info.Device,
                Width = first!.Images[0].Width,
                Height = first.Images[0].Height,
                Steps = options.Steps,
                Tuning = engine.LowMemory ? "low_memory=1" : null,
                Variant = options.Variant,
                Lora = Path.GetFullPath(options.Lora),
                WeightBytes = WeightBytes(pipeline.Info.Root),
                LoadSeconds = load,
                Rows = rows,
                MemoryMeasurement = memory.Method,
                LoadAverage = loadAverage,
            };
        }
        finally
        {
            LoraWeightsRewrite.Current = null;
            if (options.CacheDirectory is null)
                try { Directory.Delete(cache, recursive: true); } catch (DirectoryNotFoundException) { } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static LoraBenchmarkRow Row(string label, LoraAdapter[] loras, GenerationResult result, long peak, float[]? baseline, string unetSession)
    {
        var t = result.Timings;
        var stages = t.Tokenize + t.TextEncoder + t.Prepare + t.VaeDecode + TimeSpan.FromTicks(t.Evaluations.Sum(e => e.Ticks));
        var calls = t.UnetCalls.Select(c => c.TotalSeconds).ToList();
        var later = calls.Skip(1).Order().ToList();
        var equal = baseline is not null && result.FinalLatents.AsSpan().SequenceEqual(baseline);
        return new LoraBenchmarkRow(label, string.Join(", ", loras.Select(l => $"{Path.GetFileName(l.Path)}:{l.Weight}")),
            result.Elapsed.TotalSeconds, (result.Elapsed - stages).TotalSeconds, t.TextEncoder.TotalSeconds,
            calls.Count > 0 ? calls[0] : double.NaN, later.Count > 0 ? later[later.Count / 2] : double.NaN, t.VaeDecode.TotalSeconds, peak, equal,
            GC.GetGCMemoryInfo().TotalCommittedBytes, unetSession);
    }

    // The weights a text-to-image generation loads, as stored: the UNet's, the text encoders' and the VAE decoder's
    // files (.onnx and external data; the configs are a few KB).
    private static long WeightBytes(string root) =>
        new[] { "unet", "text_encoder", "text_encoder_2", "vae_decoder" }.Select(c => Path.Combine(root, c)).Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories)).Sum(f => new FileInfo(f).Length);

    private static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unknown";
        }
    }
}
