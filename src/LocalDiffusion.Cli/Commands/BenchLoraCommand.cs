using System.CommandLine;
using System.Globalization;
using LocalDiffusion.Benchmarking;
using Spectre.Console;

namespace LocalDiffusion.Cli.Commands;

/// <summary>
/// <c>localdiffusion bench lora</c>: what applying a LoRA, changing its weight and removing it cost (time, peak memory),
/// and whether the picture without it is bit-identical afterwards.
/// </summary>
internal static class BenchLoraCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var run = new BenchRunFlags("512x512", "Not used by bench lora: its sequence is fixed (warm-up, no LoRA, apply, the same again, change the weight, none).");
        var lora = new Option<string>("--lora") { Description = "The LoRA (.safetensors) to apply.", Required = true };
        var weight = new Option<float>("--weight") { Description = "The weight it is applied with first; the change goes to half of it.", DefaultValueFactory = _ => 1f };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "Optimised-model cache folder to use and keep (default: a fresh temporary one)." };
        var variant = new Option<string>("--variant")
        {
            Description = "override (the engine's way: merged weights handed to ONNX Runtime when a session opens) or rewrite (measured only: a weights-only rewrite of the cached graph per LoRA set, written to disk and opened from it).",
            DefaultValueFactory = _ => "override",
        };
        variant.AcceptOnlyFromAmong("override", "rewrite");
        var command = new Command("lora",
            "Time applying a LoRA (the first generation with it against one without), the same set again, a weight change and going back to none, with each generation's peak memory; checks the no-LoRA latents are unchanged.");
        run.AddRunFlags(command);
        run.AddEngineFlags(command);
        command.Options.Add(lora);
        command.Options.Add(weight);
        command.Options.Add(cacheDir);
        command.Options.Add(variant);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = run.Read(parse, new LoraBenchmarkOptions
            {
                Model = "", Lora = parse.GetValue(lora)!, Weight = parse.GetValue(weight), CacheDirectory = parse.GetValue(cacheDir),
                Variant = parse.GetValue(variant)!,
            });
            var report = await LoraBenchmark.RunAsync(options, new InlineProgress<string>(s => console.MarkupLineInterpolated($"[grey]{s}…[/]")), cancellationToken);
            Print(console, report);
            if (run.JsonPath(parse) is { } jsonPath)
            {
                await File.WriteAllTextAsync(jsonPath, report.ToJson(), cancellationToken);
                console.MarkupLineInterpolated($"Saved [green]{jsonPath}[/]");
            }
            return 0;
        });
        return command;
    }

    private static void Print(IAnsiConsole console, LoraBenchmarkReport r)
    {
        var ci = CultureInfo.InvariantCulture;
        console.MarkupLineInterpolated($"[bold]{r.Model}[/] on {r.Device}, {r.Width}x{r.Height}, {r.Steps} steps, {r.Tuning ?? "default engine options"}, variant {r.Variant}; ONNX Runtime {r.OnnxRuntime}; {r.Machine}");
        console.MarkupLineInterpolated($"LoRA {r.Lora}; weights loaded by a generation: {r.WeightBytes / 1e6:F0} MB; load {r.LoadSeconds:F1} s; load average {r.LoadAverage}");
        var table = new Table().AddColumns("generation", "LoRAs", "total s", "outside stages s", "text encoder s", "first UNet call s", "later UNet call s", "VAE s", "peak RSS MB", "GC committed MB", "latents = no-LoRA", "UNet session from", "UNet open s", "rewrite data s", "rewrite graph s", "written MB", "latents SHA-256");
        string F(double v) => double.IsNaN(v) ? "-" : v.ToString("F2", ci);
        foreach (var row in r.Rows)
            table.AddRow(row.Label, Markup.Escape(row.Loras.Length == 0 ? "none" : row.Loras), F(row.TotalSeconds), F(row.OutsideStagesSeconds), F(row.TextEncoderSeconds),
                F(row.FirstUnetCallSeconds), F(row.LaterUnetCallSeconds), F(row.VaeDecodeSeconds), (row.PeakResidentBytes / 1e6).ToString("F0", ci),
                (row.ManagedCommittedBytes / 1e6).ToString("F0", ci), row.LatentsEqualBaseline ? "yes" : "no", row.UnetSession,
                F(row.UnetOpenSeconds), F(row.RewriteDataSeconds), F(row.RewriteGraphSeconds), (row.BytesWritten / 1e6).ToString("F0", ci), row.LatentsSha256);
        console.Write(table);
        console.MarkupLineInterpolated($"[grey]{r.MemoryMeasurement}[/]");
    }
}
