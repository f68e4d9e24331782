using System.CommandLine;
using System.Globalization;
using LocalDiffusion.Benchmarking;
using Spectre.Console;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion bench batch</c>: images per second with queued requests run one by one and as one batch.</summary>
internal static class BenchBatchCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var run = new BenchRunFlags("256x256", "Timed rounds of each, after a warm-up round; medians are reported.");
        var requests = new Option<int>("--requests") { Description = "Queued requests (one image each, different prompts and seeds).", DefaultValueFactory = _ => 8 };
        var command = new Command("batch", "Images per second with N queued requests run one after another and as one dynamic batch, and whether the results agree.");
        run.AddRunFlags(command);
        command.Options.Add(requests);
        run.AddEngineFlags(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = run.Read(parse, new BatchBenchmarkOptions { Model = "", Requests = parse.GetValue(requests) });
            if (options.Requests is < 1 or > 64) throw new InvalidRequestException("--requests", options.Requests, null, called => $"{called} must be between 1 and 64.");
            var report = await BatchBenchmark.RunAsync(options, new InlineProgress<string>(s => console.MarkupLineInterpolated($"[grey]{s}…[/]")), cancellationToken);
            var ci = CultureInfo.InvariantCulture;
            console.MarkupLineInterpolated($"[bold]{report.Model}[/] on {report.Device}, {report.Width}x{report.Height}, {report.Steps} steps, {report.Scheduler}, guidance {report.GuidanceScale.ToString(ci)}; ONNX Runtime {report.OnnxRuntime}; {report.Machine}");
            var table = new Table().AddColumns($"{report.Requests} requests", "seconds per round (each)", "images/s (median)");
            table.AddRow("one by one", string.Join(" ", report.SequentialSeconds.Select(s => s.ToString("F2", ci))), report.SequentialImagesPerSecond.ToString("F2", ci));
            table.AddRow("one batch", string.Join(" ", report.BatchedSeconds.Select(s => s.ToString("F2", ci))), report.BatchedImagesPerSecond.ToString("F2", ci));
            console.Write(table);
            console.MarkupLineInterpolated($"batched / one by one: [bold]{report.Speedup.ToString("F2", ci)}×[/] (median of the rounds' own ratios: {report.MedianRoundSpeedup.ToString("F2", ci)}×); largest final-latent difference batched vs alone: {report.MaxLatentDifference.ToString("G3", ci)}");
            var jsonPath = run.JsonPath(parse);
            if (jsonPath is not null)
            {
                await File.WriteAllTextAsync(jsonPath, report.ToJson(), cancellationToken);
                console.MarkupLineInterpolated($"Saved [green]{jsonPath}[/]");
            }
            return 0;
        });
        return command;
    }
}
