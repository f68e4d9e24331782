using System.CommandLine;
using System.Globalization;
using LocalDiffusion.Benchmarking;
using Spectre.Console;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion bench batch</c>: images per second with queued requests run one by one and as one batch.</summary>
internal static class BenchBatchCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string?>("--model", "-m") { Description = $"Model folder. Default: {ModelLocator.DefaultModel}." };
        var size = new Option<string?>("--size") { Description = "Image size WxH, e.g. 256x256 (default: the model's native size)." };
        var steps = new Option<int>("--steps") { Description = "Denoising steps.", DefaultValueFactory = _ => 20 };
        var requests = new Option<int>("--requests") { Description = "Queued requests (one image each, different prompts and seeds).", DefaultValueFactory = _ => 8 };
        var repeats = new Option<int>("--repeats") { Description = "Timed rounds of each, after a warm-up round; medians are reported.", DefaultValueFactory = _ => 3 };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml.", DefaultValueFactory = _ => "auto" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads per operator (default: ONNX Runtime's choice)." };
        var scheduler = new Option<string?>("--scheduler") { Description = "Sampler id (default: the model's scheduler_config.json)." };
        var guidance = new Option<float>("--guidance", "--cfg") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 7.5f };
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON to this file." };
        var command = new Command("batch", "Images per second with N queued requests run one after another and as one dynamic batch, and whether the results agree.")
        {
            model, size, steps, requests, repeats, device, threads, scheduler, guidance, json,
        };
        var engine = new EngineOptions();
        engine.AddTo(command);
        var lowMemory = LowMemoryOption.Create("Hold each model only while a stage uses it, as a one-shot generate does (measures the memory saved and the reopening cost of later generations).");
        command.Options.Add(lowMemory);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (width, height) = BenchPipelineCommand.ParseSize(parse.GetValue(size));
            var options = new BatchBenchmarkOptions
            {
                Model = ModelLocator.Resolve(parse.GetValue(model)),
                Device = parse.GetValue(device)!,
                Width = width,
                Height = height,
                Steps = parse.GetValue(steps),
                Requests = parse.GetValue(requests),
                Repeats = parse.GetValue(repeats),
                Scheduler = parse.GetValue(scheduler),
                GuidanceScale = parse.GetValue(guidance),
                IntraOpThreads = parse.GetValue(threads),
                Engine = engine.Apply(parse, new PipelineOptions { Device = parse.GetValue(device)!, LowMemory = parse.GetValue(lowMemory) }),
            };
            if (options.Steps is < 1 or > 1000) throw new ArgumentOutOfRangeException("--steps", options.Steps, "--steps must be between 1 and 1000.");
            if (options.Requests is < 1 or > 64) throw new ArgumentOutOfRangeException("--requests", options.Requests, "--requests must be between 1 and 64.");
            if (options.Repeats < 1) throw new ArgumentOutOfRangeException("--repeats", options.Repeats, "--repeats must be at least 1.");
            var report = await BatchBenchmark.RunAsync(options, new InlineProgress<string>(s => console.MarkupLineInterpolated($"[grey]{s}…[/]")), cancellationToken);
            var ci = CultureInfo.InvariantCulture;
            console.MarkupLineInterpolated($"[bold]{report.Model}[/] on {report.Device}, {report.Width}x{report.Height}, {report.Steps} steps, {report.Scheduler}, guidance {report.GuidanceScale.ToString(ci)}; ONNX Runtime {report.OnnxRuntime}; {report.Machine}");
            var table = new Table().AddColumns($"{report.Requests} requests", "seconds per round (each)", "images/s (median)");
            table.AddRow("one by one", string.Join(" ", report.SequentialSeconds.Select(s => s.ToString("F2", ci))), report.SequentialImagesPerSecond.ToString("F2", ci));
            table.AddRow("one batch", string.Join(" ", report.BatchedSeconds.Select(s => s.ToString("F2", ci))), report.BatchedImagesPerSecond.ToString("F2", ci));
            console.Write(table);
            console.MarkupLineInterpolated($"batched / one by one: [bold]{report.Speedup.ToString("F2", ci)}×[/] (median of the rounds' own ratios: {report.MedianRoundSpeedup.ToString("F2", ci)}×); largest final-latent difference batched vs alone: {report.MaxLatentDifference.ToString("G3", ci)}");
            var jsonPath = parse.GetValue(json);
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
