using LocalDiffusion.Pipeline;
using System.CommandLine;
using System.Globalization;
using LocalDiffusion.Imaging;
using LocalDiffusion.Latents;
using Spectre.Console;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion generate</c>: prompt in, PNG out.</summary>
internal static class GenerateCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string?>("--model", "-m") { Description = $"Model folder (diffusers/optimum ONNX layout). Default: {ModelLocator.DefaultModel}, the shapes model that ships with LocalDiffusion." };
        var prompt = new Option<string>("--prompt", "-p") { Description = "What to draw.", Required = true };
        var negative = new Option<string>("--negative-prompt") { Description = "What not to draw (used when guidance > 1).", DefaultValueFactory = _ => "" };
        var steps = new Option<int?>("--steps") { Description = "Denoising steps (default: the model's; 20 for SD, 4 LCM, 1 Turbo, or its localdiffusion.json)." };
        var guidance = new Option<float?>("--guidance", "--cfg") { Description = "Classifier-free guidance scale; ≤ 1 turns guidance off (default: the model's; 7.5 for SD, 8.5 LCM, 0 Turbo)." };
        var width = new Option<int?>("--width", "-W") { Description = "Width in pixels, a multiple of 8 (default: the model's native size)." };
        var height = new Option<int?>("--height", "-H") { Description = "Height in pixels, a multiple of 8 (default: the model's native size)." };
        var seed = new Option<long?>("--seed", "-s") { Description = "Seed; the same seed gives the same image as diffusers with torch.Generator('cpu').manual_seed(seed). Default: random." };
        var scheduler = new Option<string?>("--scheduler") { Description = "Sampler id or name: pndm, ddim, euler, euler_a, lms, dpmpp_2m, dpmpp_2m_karras, … (default: the model's scheduler_config.json)." };
        var count = new Option<int>("--n", "--batch-size") { Description = "Number of images (one batch, one seed).", DefaultValueFactory = _ => 1 };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml.", DefaultValueFactory = _ => "auto" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads per operator (default: ONNX Runtime's choice)." };
        var output = new Option<string>("--out", "-o") { Description = "Output image: .png (with the A1111 parameters text), .jpg/.jpeg or .webp (no parameters text); with --n > 1, -0, -1, … are added before the extension.", DefaultValueFactory = _ => "output.png" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace existing output files (by default they are never overwritten)." };
        var latents = new Option<string?>("--latents") { Description = "Initial unit-noise latents from a NumPy .npy file [n,4,H/8,W/8] instead of the seed's." };
        var noWeighting = new Option<bool>("--no-weighting") { Description = "Read the prompts as plain text: no (word:1.3) / [word] attention weights, no BREAK." };
        var maxSequenceLength = new Option<int?>("--max-sequence-length") { Description = "SD 3 and FLUX.1: the most T5 tokens the prompt is encoded to, 1-512 (default: the model's; 256, 512 for FLUX.1-dev)." };
        var saveLatents = new Option<string?>("--save-latents") { Description = "Write the final (denoised) latents to this .npy file." };

        var command = new Command("generate", "Generate images from a text prompt.")
        {
            model, prompt, negative, steps, guidance, width, height, seed, scheduler, count, device, threads, output, overwrite, latents, saveLatents, noWeighting, maxSequenceLength,
        };
        var imageOptions = new ImageOptions();
        imageOptions.AddTo(command);
        var sdxlOptions = new SdxlOptions();
        sdxlOptions.AddTo(command);
        var controlNetOptions = new ControlNetOptions();
        controlNetOptions.AddTo(command);
        var refinerOptions = new RefinerOptions();
        refinerOptions.AddTo(command);
        var hiresFlags = new HiresFlags();
        hiresFlags.AddTo(command);
        var cacheDir = CacheDirOption.Create();
        command.Options.Add(cacheDir);
        var vae = VaeOption.Create();
        command.Options.Add(vae);
        var vaeTiling = new VaeTilingFlags();
        vaeTiling.AddTo(command);
        var loras = new LoraOptions();
        loras.AddTo(command);
        var embeddings = new EmbeddingOptions();
        embeddings.AddTo(command);
        var engine = new EngineOptions();
        engine.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            ArgvText.Check(parse.GetValue(prompt), nameof(GenerationRequest.Prompt));
            ArgvText.Check(parse.GetValue(negative), nameof(GenerationRequest.NegativePrompt));
            var n = parse.GetValue(count);
            if (n < 1) throw new InvalidRequestException("--n", null, null, called => $"{called} is {n}; it must be at least 1.");
            var outputs = OutputPaths(parse.GetValue(output)!, n);
            var format = OutputFormat(outputs[0]);
            var latentsIn = parse.GetValue(latents);
            var latentsOut = parse.GetValue(saveLatents);
            var replace = parse.GetValue(overwrite);
            // Refuse before any work: nothing the user had is overwritten unless they say so, and no run is wasted on
            // an output that cannot be written.
            OutputFiles.Check(
                [.. outputs.Select(o => ("--out", o)), .. latentsOut is null ? [] : new[] { ("--save-latents", latentsOut) }],
                [.. latentsIn is null ? [] : new[] { ("--latents", latentsIn) }, .. imageOptions.Inputs(parse), .. controlNetOptions.Inputs(parse)], replace);

            var (initial, latentWidth, latentHeight) = latentsIn is null ? (null, null, null) : ReadLatents(latentsIn, n);
            var requestWidth = parse.GetValue(width) ?? latentWidth;
            var requestHeight = parse.GetValue(height) ?? latentHeight;
            if (latentWidth is { } lw && latentHeight is { } lh && (requestWidth != lw || requestHeight != lh))
                throw new InvalidRequestException("--latents", null, null, called => $"{called} {latentsIn} holds {lw / 8}x{lh / 8} latents, which make {lw}x{lh} images; --width/--height ask for {requestWidth}x{requestHeight}.");

            var withImages = imageOptions.Read(parse);
            var withSdxl = sdxlOptions.Read(parse);
            var withControlNets = controlNetOptions.Read(parse);
            var (refinerDir, switchAt) = refinerOptions.Read(parse);
            var hires = hiresFlags.Read(parse);
            if (hires is not null && refinerDir is not null)
                throw new InvalidRequestException("--refiner", null, null, called => $"--hires-scale/--hires-size and {called} both finish the picture; use one.");
            if (hires is not null && imageOptions.Inputs(parse).Any(i => i.Flag == "--init-image"))
                throw new InvalidRequestException("--init-image", null, null, _ => "The hires fix (--hires-scale/--hires-size) enlarges a text-to-image first pass; it does not take --init-image.");
            var modelDir = ModelLocator.Resolve(parse.GetValue(model));
            var options = embeddings.Apply(parse, loras.Apply(parse, engine.Apply(parse, new PipelineOptions
            {
                Device = parse.GetValue(device)!,
                IntraOpThreads = parse.GetValue(threads),
                CacheDirectory = parse.GetValue(cacheDir),
                VaeDecoderPath = parse.GetValue(vae),
                VaeTiling = vaeTiling.Read(parse),
                // One generation, then exit: each model is released once its stage is done (nothing is opened twice).
                LowMemory = true,
            })));
            using var pipeline = StableDiffusionPipeline.Load(modelDir, options);
            using var refiner = refinerDir is null ? null : StableDiffusionPipeline.Load(refinerDir, options);
            // What loading had to work around (a provider passed over, a damaged cache entry rebuilt): never silent.
            foreach (var note in pipeline.Info.DeviceNotes.Concat(refiner?.Info.DeviceNotes ?? []))
                console.MarkupLineInterpolated($"[yellow]note:[/] {note}");
            var request = new GenerationRequest
            {
                Prompt = parse.GetValue(prompt)!,
                NegativePrompt = parse.GetValue(negative)!,
                PromptWeighting = !parse.GetValue(noWeighting),
                Steps = parse.GetValue(steps) ?? pipeline.Info.Family.DefaultSteps,
                GuidanceScale = parse.GetValue(guidance) ?? pipeline.Info.Family.DefaultGuidanceScale,
                Width = requestWidth,
                Height = requestHeight,
                Seed = parse.GetValue(seed),
                Scheduler = parse.GetValue(scheduler),
                ImageCount = n,
                InitialLatents = initial,
                MaxSequenceLength = parse.GetValue(maxSequenceLength),
            };
            request = withControlNets(withSdxl(withImages(request)));
            using var hiresModel = hires?.ModelPath is { } hiresPath ? Upscaling.ImageUpscaler.Load(hiresPath, new Upscaling.UpscalerOptions { Device = options.Device, IntraOpThreads = options.IntraOpThreads }) : null;
            // The hires upscaler is named by its file; the plan is checked before any work.
            var hiresOptions = hires?.Options is { } h ? h with { Upscaler = hiresModel?.Name ?? h.Upscaler, Model = hiresModel } : null;
            if (hiresOptions is not null) HiresFlags.Check(pipeline, request, hiresOptions);

            GenerationResult? result = null;
            await console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .StartAsync(async ctx =>
                {
                    var task = ctx.AddTask("encoding");
                    var progress = new InlineProgress<GenerationProgress>(p =>
                    {
                        task.Description = p.Phase.ToString().ToLowerInvariant();
                        if (p.TotalSteps > 0) task.MaxValue = p.TotalSteps;
                        task.Value = p.Step;
                    });
                    result = hiresOptions is not null
                        ? await LocalDiffusion.Pipeline.HiresFix.RunAsync(pipeline, request, hiresOptions, progress, cancellationToken)
                        : refiner is null
                        ? await pipeline.GenerateAsync(request, progress, cancellationToken)
                        : await pipeline.GenerateWithRefinerAsync(request, refiner, switchAt, progress, cancellationToken);
                    task.Value = task.MaxValue;
                });

            foreach (var warning in result!.Warnings)
                console.MarkupLineInterpolated($"[yellow]warning:[/] {warning}");
            for (var i = 0; i < result.Images.Count; i++)
            {
                ImageEncoder.Save(result.Images[i], outputs[i], format, overwrite: replace);
                console.MarkupLineInterpolated($"Saved [green]{outputs[i]}[/] ({result.Images[i].Width}x{result.Images[i].Height})");
            }
            if (latentsOut is not null)
            {
                NpyFile.Write(latentsOut, result.FinalLatents, result.LatentShape, overwrite: replace);
                console.MarkupLineInterpolated($"Saved latents [green]{latentsOut}[/] [[{string.Join(",", result.LatentShape)}]]");
            }
            console.MarkupLineInterpolated(
                $"seed {result.Seed}, {result.Scheduler}, {result.UnetEvaluations} UNet evaluations, {result.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s on {pipeline.Info.Device}");
            return 0;
        });
        return command;
    }

    // The file's header shape must be [n,C,h,w]: its element count alone would accept a transposed or foreign array. The
    // channels are the model family's (4 for SD 1.x/2.x/XL, 16 for SD 3 and FLUX), checked by the engine once it is loaded.
    private static (float[] Data, int? Width, int? Height) ReadLatents(string path, int images)
    {
        float[] data;
        int[] shape;
        try
        {
            (data, shape) = NpyFile.Read(path);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw new InvalidRequestException("--latents", null, null, called => $"{called}: {e.Message}", e);
        }
        if (shape is not [var n, var c, var h, var w] || n != images || c < 1 || h < 1 || w < 1)
            throw new InvalidRequestException("--latents", null, null, called => $"{called} {path} has shape ({string.Join(", ", shape)}); ({images}, latent channels, height/8, width/8) was expected for --n {images}.");
        return (data, w * 8, h * 8);
    }

    // The extension says what the file holds: PNG bytes in a .jpg or .gif mislead every viewer and upload form.
    // No extension keeps PNG, the historical default.
    private static ImageFormat OutputFormat(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        "" or ".png" => ImageFormat.Png,
        ".jpg" or ".jpeg" => ImageFormat.Jpeg,
        ".webp" => ImageFormat.Webp,
        var ext => throw new InvalidRequestException("--out", null, null, called => $"{called} {path}: {ext} is not a format LocalDiffusion writes; use .png, .jpg, .jpeg or .webp."),
    };

    private static List<string> OutputPaths(string output, int count)
    {
        if (count <= 1) return [output];
        var ext = Path.GetExtension(output);
        var stem = output[..^ext.Length];
        return Enumerable.Range(0, count).Select(i => $"{stem}-{i}{(ext.Length > 0 ? ext : ".png")}").ToList();
    }
}
