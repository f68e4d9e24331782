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
        var run = new BenchRunFlags("512x512", "Timed generations after the first; stage times are their medians.");
        var skipUncached = new Option<bool>("--skip-uncached") { Description = "Do not time a load without the optimised-model cache (saves one full optimisation)." };
        var noMatMul = new Option<bool>("--no-matmul") { Description = "Do not measure the large-MatMul GFLOP/s the step time is compared with." };
        var command = new Command("pipeline",
            "Time a model's load (without the optimised-model cache, storing it, from it) and each stage of its generations; overhead, peak memory, allocations per step.");
        run.AddRunFlags(command);
        command.Options.Add(skipUncached);
        command.Options.Add(noMatMul);
        var cacheDir = new Option<string?>("--cache-dir")
        {
            Description = "Optimised-model cache folder to use and keep (default: a fresh temporary one, deleted afterwards, so the first start is really cold).",
        };
        command.Options.Add(cacheDir);
        run.AddEngineFlags(command);
        var vaeTiling = new VaeTilingFlags();
        vaeTiling.AddTo(command);
        var vae = VaeOption.Create();
        command.Options.Add(vae);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = run.Read(parse, new PipelineBenchmarkOptions
            {
                Model = "",
                MeasureUncachedLoad = !parse.GetValue(skipUncached),
                MeasureMatMul = !parse.GetValue(noMatMul),
                CacheDirectory = parse.GetValue(cacheDir),
            }, engine => engine with { VaeTiling = vaeTiling.Read(parse), VaeDecoderPath = parse.GetValue(vae) });
            var jsonPath = run.JsonPath(parse);
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
