using LocalDiffusion.Pipeline;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using LocalDiffusion.Cli.Batch;
using Spectre.Console;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary>
/// <c>localdiffusion batch</c>: a prompts file in, one picture per prompt out, in a folder that several processes (or
/// machines, or Kubernetes pods) fill together with <c>--shard i/N</c>, resumable after a kill.
/// </summary>
internal static class BatchCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var promptsFile = new Option<string>("--prompts-file") { Description = "One prompt per line, or JSON lines {\"prompt\", \"negative_prompt\", \"seed\", \"steps\", \"guidance_scale\", \"width\", \"height\", \"scheduler\"}. Blank lines are skipped.", Required = true };
        var outDir = new Option<string>("--out-dir") { Description = "Folder for the pictures (000000.png, 000001.png, …: the prompt's number in the file) and the manifest-<i>-of-<N>.jsonl records; created if missing.", Required = true };
        var shard = new Option<string>("--shard") { Description = "i/N: make only prompts k with k % N == i (i from 0). Run N of these, anywhere, on one shared folder.", DefaultValueFactory = _ => "0/1" };
        var model = new Option<string?>("--model", "-m") { Description = $"Model folder. Default: {ModelLocator.DefaultModel}." };
        var seed = new Option<long>("--seed", "-s") { Description = "Prompt k gets seed --seed + k, unless its JSON line gives its own.", DefaultValueFactory = _ => 0 };
        var negative = new Option<string>("--negative-prompt") { Description = "Negative prompt for lines that give none.", DefaultValueFactory = _ => "" };
        var steps = new Option<int?>("--steps") { Description = "Denoising steps for lines that give none (default: the model's)." };
        var guidance = new Option<float?>("--guidance", "--cfg") { Description = "Guidance scale for lines that give none (default: the model's)." };
        var width = new Option<int?>("--width", "-W") { Description = "Width for lines that give none (default: the model's native size)." };
        var height = new Option<int?>("--height", "-H") { Description = "Height for lines that give none (default: the model's native size)." };
        var scheduler = new Option<string?>("--scheduler") { Description = "Sampler for lines that give none (default: the model's)." };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml.", DefaultValueFactory = _ => "auto" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads per operator (default: ONNX Runtime's choice)." };
        var noWeighting = new Option<bool>("--no-weighting") { Description = "Read the prompts as plain text: no (word:1.3) / [word] attention weights, no BREAK." };
        var cacheDir = CacheDirOption.Create();
        var vae = VaeOption.Create();

        var command = new Command("batch", "Generate one picture per line of a prompts file into a folder; shardable over processes and machines (--shard i/N), resumable.")
        {
            promptsFile, outDir, shard, model, seed, negative, steps, guidance, width, height, scheduler, device, threads, noWeighting, cacheDir, vae,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            // Everything the user gave is checked before the model loads: a bad shard or line must not cost a load.
            ArgvText.Check(parse.GetValue(negative), nameof(GenerationRequest.NegativePrompt));
            var part = Shard.Parse(parse.GetValue(shard)!);
            var prompts = PromptsFile.Read(parse.GetValue(promptsFile)!);
            if (parse.GetValue(seed) < 0) throw new InvalidRequestException("--seed", null, null, called => $"{called} must be 0 or more.");
            var folder = BatchFolder.Open(parse.GetValue(outDir)!);
            var manifest = BatchManifest.Open(folder, part);
            var mine = prompts.Where(p => part.Takes(p.K)).ToList();
            var todo = mine.Where(p => !folder.IsDone(p)).ToList();
            console.MarkupLineInterpolated($"shard {part}: {mine.Count} of {prompts.Count} prompts, {mine.Count - todo.Count} already done, {todo.Count} to make");
            if (todo.Count == 0) return 0;

            var modelDir = ModelLocator.Resolve(parse.GetValue(model));
            using var pipeline = StableDiffusionPipeline.Load(modelDir, new PipelineOptions
            {
                Device = parse.GetValue(device)!,
                IntraOpThreads = parse.GetValue(threads),
                CacheDirectory = parse.GetValue(cacheDir),
                VaeDecoderPath = parse.GetValue(vae),
            });
            foreach (var note in pipeline.Info.DeviceNotes)
                console.MarkupLineInterpolated($"[yellow]note:[/] {note}");
            var modelName = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir)));
            foreach (var prompt in todo)
            {
                var request = new GenerationRequest
                {
                    Prompt = prompt.Prompt,
                    NegativePrompt = prompt.NegativePrompt ?? parse.GetValue(negative)!,
                    PromptWeighting = !parse.GetValue(noWeighting),
                    Steps = prompt.Steps ?? parse.GetValue(steps) ?? pipeline.Info.Family.DefaultSteps,
                    GuidanceScale = prompt.GuidanceScale ?? parse.GetValue(guidance) ?? pipeline.Info.Family.DefaultGuidanceScale,
                    Width = prompt.Width ?? parse.GetValue(width),
                    Height = prompt.Height ?? parse.GetValue(height),
                    Seed = prompt.Seed ?? parse.GetValue(seed) + prompt.K,
                    Scheduler = prompt.Scheduler ?? parse.GetValue(scheduler),
                };
                var clock = Stopwatch.StartNew();
                var result = await Generate(pipeline, request, prompt, cancellationToken);
                var image = result.Images[0];
                var png = image.EncodePng();
                manifest.Append(prompt.FileName, Record(prompt, request, result, modelName, part, clock.Elapsed));
                folder.Write(prompt, png);
                foreach (var warning in result.Warnings)
                    console.MarkupLineInterpolated($"[yellow]warning:[/] {prompt.FileName}: {warning}");
                console.MarkupLineInterpolated($"{prompt.FileName} seed {result.Seed} ({image.Width}x{image.Height}, {clock.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s)");
            }
            console.MarkupLineInterpolated($"shard {part}: done; records in [green]{manifest.Path}[/]");
            return 0;
        });
        return command;
    }

    // A request the engine refuses names the prompt's line, so the user can find it among thousands.
    private static async Task<GenerationResult> Generate(StableDiffusionPipeline pipeline, GenerationRequest request, BatchPrompt prompt, CancellationToken token)
    {
        try
        {
            return await pipeline.GenerateAsync(request, null, token);
        }
        catch (ArgumentException e)
        {
            throw new InvalidRequestException("--prompts-file", null, null, called => $"{called} line {prompt.Line} ({prompt.FileName}): {RequestFields.MessageFor(e, FrontEnd.Cli)}", e);
        }
    }

    private static JsonObject Record(BatchPrompt prompt, GenerationRequest request, GenerationResult result, string model, Shard shard, TimeSpan elapsed) => new()
    {
        ["file"] = prompt.FileName,
        ["k"] = prompt.K,
        ["line"] = prompt.Line,
        ["prompt"] = request.Prompt,
        ["negative_prompt"] = request.NegativePrompt,
        ["seed"] = result.Seed,
        ["steps"] = request.Steps,
        ["guidance_scale"] = request.GuidanceScale,
        ["width"] = result.Images[0].Width,
        ["height"] = result.Images[0].Height,
        ["scheduler"] = result.Scheduler,
        ["model"] = model,
        ["shard"] = shard.ToString(),
        ["time"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
        ["seconds"] = Math.Round(elapsed.TotalSeconds, 3),
    };
}
