using System.CommandLine;
using System.Globalization;
using LocalDiffusion.Benchmarking;
using Spectre.Console;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion bench pipeline</c>: load times, per-stage times, overhead, memory and allocations of one model.</summary>
internal static class BenchPipelineCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string?>("--model", "-m") { Description = $"Model folder. Default: {ModelLocator.DefaultModel}." };
        var size = new Option<string?>("--size") { Description = "Image size WxH, e.g. 512x512 (default: the model's native size)." };
        var steps = new Option<int>("--steps") { Description = "Denoising steps.", DefaultValueFactory = _ => 20 };
        var repeats = new Option<int>("--repeats") { Description = "Timed generations after the first; stage times are their medians.", DefaultValueFactory = _ => 3 };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml.", DefaultValueFactory = _ => "auto" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads per operator (default: ONNX Runtime's choice)." };
        var scheduler = new Option<string?>("--scheduler") { Description = "Sampler id (default: the model's scheduler_config.json)." };
        var guidance = new Option<float>("--guidance", "--cfg") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 7.5f };
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON to this file." };
        var skipUncached = new Option<bool>("--skip-uncached") { Description = "Do not time a load without the optimised-model cache (saves one full optimisation)." };
        var noMatMul = new Option<bool>("--no-matmul") { Description = "Do not measure the large-MatMul GFLOP/s the step time is compared with." };
        var command = new Command("pipeline",
            "Time a model's load (without the optimised-model cache, storing it, from it) and each stage of its generations; overhead, peak memory, allocations per step.")
        {
            model, size, steps, repeats, device, threads, scheduler, guidance, json, skipUncached, noMatMul,
        };
        var cacheDir = new Option<string?>("--cache-dir")
        {
            Description = "Optimised-model cache folder to use and keep (default: a fresh temporary one, deleted afterwards, so the first start is really cold).",
        };
        command.Options.Add(cacheDir);
        var engine = new EngineOptions();
        engine.AddTo(command);
        var lowMemory = LowMemoryOption.Create("Hold each model only while a stage uses it, as a one-shot generate does (measures the memory saved and the reopening cost of later generations).");
        command.Options.Add(lowMemory);
        var vaeTiling = new VaeTilingFlags();
        vaeTiling.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (width, height) = ParseSize(parse.GetValue(size));
            var options = new PipelineBenchmarkOptions
            {
                Model = ModelLocator.Resolve(parse.GetValue(model)),
                Device = parse.GetValue(device)!,
                Width = width,
                Height = height,
                Steps = parse.GetValue(steps),
                Repeats = parse.GetValue(repeats),
                Scheduler = parse.GetValue(scheduler),
                GuidanceScale = parse.GetValue(guidance),
                IntraOpThreads = parse.GetValue(threads),
                Engine = engine.Apply(parse, new PipelineOptions { Device = parse.GetValue(device)!, VaeTiling = vaeTiling.Read(parse), LowMemory = parse.GetValue(lowMemory) }),
                MeasureUncachedLoad = !parse.GetValue(skipUncached),
                MeasureMatMul = !parse.GetValue(noMatMul),
                CacheDirectory = parse.GetValue(cacheDir),
            };
            if (options.Steps is < 1 or > 1000) throw new ArgumentOutOfRangeException("--steps", options.Steps, "--steps must be between 1 and 1000.");
            if (options.Repeats < 1) throw new ArgumentOutOfRangeException("--repeats", options.Repeats, "--repeats must be at least 1.");
            var jsonPath = parse.GetValue(json);
            var report = await PipelineBenchmark.RunAsync(options, new InlineProgress<string>(s => console.MarkupLineInterpolated($"[grey]{s}…[/]")), cancellationToken);
            Print(console, report);
            if (jsonPath is not null)
            {
                await File.WriteAllTextAsync(jsonPath, report.ToJson(), cancellationToken);
                console.MarkupLineInterpolated($"Saved [green]{jsonPath}[/]");
            }
            return 0;
        });
        return command;
    }

    internal static (int? Width, int? Height) ParseSize(string? text)
    {
        if (text is null) return (null, null);
        var parts = text.ToLowerInvariant().Split('x');
        if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out var w) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var h))
            return (w, h);
        throw new ArgumentException($"--size '{text}': expected WIDTHxHEIGHT, e.g. 512x512.", "--size");
    }

    private static void Print(IAnsiConsole console, PipelineBenchmarkReport r)
    {
        var ci = CultureInfo.InvariantCulture;
        if (r.Tuning is not null) console.MarkupLineInterpolated($"engine options: {r.Tuning}");
        if (r.MatMulGflops is { } gflops) console.MarkupLineInterpolated($"large fp32 MatMul (2048³) through ONNX Runtime: {gflops:F0} GFLOP/s");
        console.MarkupLineInterpolated($"[bold]{r.Model}[/] on {r.Device}, {r.Width}x{r.Height}, {r.Steps} steps ({r.Evaluations} UNet evaluations), {r.Scheduler}, guidance {r.GuidanceScale.ToString(ci)}; ONNX Runtime {r.OnnxRuntime}; {r.Machine}");
        var load = new Table().AddColumns("load", "seconds");
        load.AddRow("without the cache", double.IsNaN(r.LoadUncachedSeconds) ? "not measured" : r.LoadUncachedSeconds.ToString("F2", ci));
        load.AddRow("first start (optimise and store)", r.LoadColdSeconds.ToString("F2", ci));
        load.AddRow("later starts (from the cache)", r.LoadWarmSeconds.ToString("F2", ci));
        console.Write(load);
        var stages = new Table().AddColumns("stage (ms)", "first run", $"steady (median of {r.Repeats})");
        void Row(string name, Func<StageTimes, double> pick) => stages.AddRow(name, pick(r.FirstRun).ToString("F2", ci), pick(r.Steady).ToString("F2", ci));
        Row("tokenize", s => s.Tokenize);
        Row("text encoder", s => s.TextEncoder);
        Row("noise + scheduler set-up", s => s.Prepare);
        Row("first UNet call", s => s.FirstUnetCall);
        Row("UNet call (median)", s => s.UnetCall);
        Row("scheduler step + guidance (median)", s => s.SchedulerStep);
        Row("VAE decode", s => s.VaeDecode);
        Row("PNG encode", s => s.PngEncode);
        Row("whole generation", s => s.Total);
        stages.AddRow("engine overhead (share of denoising outside ONNX Runtime Run)",
            r.FirstRun.EngineOverheadShare.ToString("P2", ci), r.Steady.EngineOverheadShare.ToString("P2", ci));
        console.Write(stages);
        console.MarkupLineInterpolated($"peak resident memory while generating: {r.PeakResidentBytes / 1e6:F0} MB; managed allocations per step: {r.AllocatedBytesPerStep:F0} bytes");
    }
}
