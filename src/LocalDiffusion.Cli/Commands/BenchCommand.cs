using LocalDiffusion.Pipeline;
using System.CommandLine;
using LocalDiffusion.Benchmarking;
using Spectre.Console;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion bench schedulers</c>: cost and convergence of every scheduler at several step counts.</summary>
internal static class BenchCommand
{
    private const string DefaultPrompt = "a red circle on a blue background";
    private const string EvalPromptsFile = "eval_prompts.json";

    public static Command Create(IAnsiConsole console) =>
        new("bench", "Measure the engine.") { CreateSchedulers(console), BenchPipelineCommand.Create(console), BenchBatchCommand.Create(console), BenchDecodeCommand.Create(console), BenchLoraCommand.Create(console), BenchServerCommand.Create(console) };

    private static Command CreateSchedulers(IAnsiConsole console)
    {
        var model = new Option<string?>("--model", "-m") { Description = $"Model folder. Default: {ModelLocator.DefaultModel}." };
        var schedulers = new Option<string>("--schedulers") { Description = "all, or comma-separated scheduler ids/names (see `localdiffusion schedulers`).", DefaultValueFactory = _ => "all" };
        var steps = new Option<string>("--steps") { Description = "Comma-separated step counts.", DefaultValueFactory = _ => "4,8,16,32" };
        var prompt = new Option<string?>("--prompt", "-p") { Description = $"One prompt, run with every seed. Default: the model's {EvalPromptsFile} when it has one (the shapes model's evaluation set), else \"{DefaultPrompt}\"." };
        var prompts = new Option<string?>("--prompts") { Description = "Prompts file: one prompt per line, or JSON (array of prompts or {prompt, seed, …} objects)." };
        var seeds = new Option<string?>("--seeds") { Description = "Seeds: a range 1-8, a list 1,2,5, or both (default 1-4; overrides seeds in a JSON prompts file)." };
        var reference = new Option<string>("--reference") { Description = "The high-step solution errors are measured against, NAME@STEPS.", DefaultValueFactory = _ => ReferenceSolution.Default.ToString() };
        var guidance = new Option<float>("--guidance", "--cfg") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 7.5f };
        var negative = new Option<string>("--negative-prompt") { Description = "Negative prompt.", DefaultValueFactory = _ => "" };
        var width = new Option<int?>("--width", "-W") { Description = "Width in pixels (default: the model's native size)." };
        var height = new Option<int?>("--height", "-H") { Description = "Height in pixels (default: the model's native size)." };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs per case; times are the median.", DefaultValueFactory = _ => 1 };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml.", DefaultValueFactory = _ => "auto" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads per operator (default: ONNX Runtime's choice)." };
        var output = new Option<string>("--out", "-o") { Description = "Folder for the table (.md, .csv, .json), convergence plots and image grid.", DefaultValueFactory = _ => "bench-schedulers" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace existing files in --out (by default they are never overwritten)." };

        var command = new Command("schedulers",
            "Run schedulers at several step counts on the same prompts and seeds: UNet evaluations, time, memory, and error against a high-step reference.")
        {
            model, schedulers, steps, prompt, prompts, seeds, reference, guidance, negative, width, height, repeats, device, threads, output, overwrite,
        };
        var cacheDir = CacheDirOption.Create();
        command.Options.Add(cacheDir);
        command.SetAction(async (parse, cancellationToken) =>
        {
            // Every argument is checked before the model loads and anything runs.
            var outDir = parse.GetValue(output)!;
            var replace = parse.GetValue(overwrite);
            OutputFiles.Check(BenchmarkOutput.FileNames.Select(name => ("--out", Path.Combine(outDir, name))).ToList(), [], replace);
            var stepList = Flag("--steps", () => NumberLists.ParseSteps(parse.GetValue(steps)!));
            var seedText = parse.GetValue(seeds);
            var seedList = Flag("--seeds", () => NumberLists.ParseSeeds(seedText ?? "1-4"));
            var referenceSolution = Flag("--reference", () => ReferenceSolution.Parse(parse.GetValue(reference)!));
            var schedulerText = parse.GetValue(schedulers)!.Trim();
            var schedulerList = schedulerText.Equals("all", StringComparison.OrdinalIgnoreCase)
                ? null
                : schedulerText.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (schedulerList is [])
                throw new InvalidRequestException("--schedulers", null, null, called => $"{called} names no scheduler: pass all, or ids such as euler,dpmpp_2m (see `localdiffusion schedulers`).");
            if (parse.GetValue(prompt) is not null && parse.GetValue(prompts) is not null)
                throw new InvalidRequestException("--prompts", null, null, called => $"Give --prompt or {called}, not both.");
            var modelDir = ModelLocator.Resolve(parse.GetValue(model));
            var promptsFile = parse.GetValue(prompts)
                ?? (parse.GetValue(prompt) is null && File.Exists(Path.Combine(modelDir, EvalPromptsFile)) ? Path.Combine(modelDir, EvalPromptsFile) : null);
            var cases = promptsFile is not null
                ? BenchmarkCaseFile.Load(promptsFile, seedList, overrideFileSeeds: seedText is not null)
                : BenchmarkCase.Cross([parse.GetValue(prompt) ?? DefaultPrompt], seedList);
            var options = new SchedulerBenchmarkOptions
            {
                Schedulers = schedulerList,
                Steps = stepList,
                Cases = cases,
                Reference = referenceSolution,
                GuidanceScale = parse.GetValue(guidance),
                NegativePrompt = parse.GetValue(negative)!,
                Width = parse.GetValue(width),
                Height = parse.GetValue(height),
                Repeats = parse.GetValue(repeats),
                AdherenceScorer = promptsFile is not null && IsShapesEvaluationSet(promptsFile) ? ShapesAdherenceScorer.Load(promptsFile) : null,
            };
            SchedulerBenchmark.Validate(options);
            if (promptsFile is not null)
                console.MarkupLineInterpolated($"Prompts: [blue]{promptsFile}[/] ({cases.Count} cases{(options.AdherenceScorer is null ? "" : ", adherence scored by the shapes analyser")})");

            using var pipeline = StableDiffusionPipeline.Load(modelDir, new PipelineOptions
            {
                Device = parse.GetValue(device)!,
                IntraOpThreads = parse.GetValue(threads),
                CacheDirectory = parse.GetValue(cacheDir),
            });
            SchedulerBenchmarkReport? report = null;
            await console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .StartAsync(async ctx =>
                {
                    var task = ctx.AddTask("starting");
                    var progress = new InlineProgress<BenchmarkProgress>(p =>
                    {
                        task.Description = Markup.Escape(p.Current);
                        task.MaxValue = p.Total;
                        task.Value = p.Completed;
                    });
                    report = await new SchedulerBenchmark(pipeline).RunAsync(options, progress, cancellationToken);
                    task.Value = task.MaxValue;
                });

            // Straight to the writer: Spectre would wrap the table's long lines at the console width.
            console.Profile.Out.Writer.WriteLine(MarkdownReport.Format(report!));
            foreach (var path in BenchmarkOutput.Write(report!, outDir, replace))
                console.MarkupLineInterpolated($"Saved [green]{path}[/]");
            if (!ConvergencePlot.CanDrawText)
                console.MarkupLine("[yellow]warning:[/] no font was found, so the plots and the grid have no text.");
            return 0;
        });
        return command;
    }

    // A JSON prompts file whose every case says what the picture must show (colour, background, shape, position).
    private static bool IsShapesEvaluationSet(string path)
    {
        if (!path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return false;
        try
        {
            return Evaluation.ShapesEvaluationSet.Load(path).Count > 0;
        }
        catch (Exception e) when (e is InvalidDataException or InvalidOperationException) // a plain prompt list, or an array root
        {
            return false;
        }
    }

    // The benchmark library's parsers throw FormatException; on the command line that is a bad flag value.
    private static T Flag<T>(string flag, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (FormatException e)
        {
            throw new InvalidRequestException(flag, null, null, called => $"{called}: {e.Message}", e);
        }
    }
}
