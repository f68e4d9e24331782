using System.Diagnostics;
using LocalDiffusion.Decoding;
using LocalDiffusion.Denoising;
using LocalDiffusion.Imaging;
using LocalDiffusion.Latents;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tokenizer;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion;

/// <summary>
/// Text-to-image, img2img and inpainting with a Stable Diffusion 1.x/2.x ONNX export, in stages: prompt encoding
/// (PromptEncoding/) → initial latents (Latents/) → denoising (Denoising/) → decoding (Decoding/). What the model is,
/// and so what the stages feed the UNet, is decided once at load by <see cref="ModelFamily"/>.
/// Sessions are created once and reused. <see cref="GenerateAsync"/> may be called from several threads at once:
/// each generation has its own scheduler, generator and buffers, and ONNX Runtime sessions run concurrently.
/// </summary>
public sealed partial class StableDiffusionPipeline : IDisposable
{
    private const int MaxSide = 4096;
    private const int MaxImages = 64;
    private const int MaxSteps = 1000;
    // ComfyUI's limit; AUTOMATIC1111's slider stops at 30. Beyond it guidance only overflows.
    private const float MaxGuidance = 100f;

    // What SD 1.x exports ship in scheduler/scheduler_config.json (GUIDE §3), for folders that lack one.
    private static readonly SchedulerConfig StableDiffusion15Scheduler = SchedulerConfig.Default with
    {
        ClassName = "PNDMScheduler",
        NumTrainTimesteps = 1000,
        BetaStart = 0.00085,
        BetaEnd = 0.012,
        BetaSchedule = BetaSchedule.ScaledLinear,
        PredictionType = PredictionType.Epsilon,
        SetAlphaToOne = false,
        SkipPrkSteps = true,
        StepsOffset = 1,
        TimestepSpacing = TimestepSpacing.Leading,
    };

    private readonly ModelFolder _folder;
    private readonly ClipTextEncoder _textEncoder;
    private readonly PromptEncoder _promptEncoder;
    private readonly ClipTextEncoder? _textEncoder2;
    private readonly SdxlPromptEncoder? _sdxlPromptEncoder;
    private readonly UNet _unet;
    private readonly VaeDecoder _vae;
    private readonly Lazy<VaeEncoder?> _vaeEncoder;
    private readonly SchedulerConfig _schedulerConfig;
    private readonly SchedulerRegistry _schedulers;
    private readonly CancellationTokenSource _disposing = new();
    private readonly object _gate = new();
    private int _active;
    [ThreadStatic] private static int _generationsOnThisThread;
    private bool _disposed;

    private StableDiffusionPipeline(ModelFolder folder, ClipTokenizer tokenizer, ClipTextEncoder textEncoder, UNet unet,
        VaeDecoder vae, SchedulerConfig schedulerConfig, SchedulerRegistry schedulers, ModelInfo info, Lazy<VaeEncoder?> vaeEncoder,
        (ClipTokenizer Tokenizer, ClipTextEncoder Encoder)? second)
    {
        if (second is { } xl)
        {
            _textEncoder2 = xl.Encoder;
            _sdxlPromptEncoder = new SdxlPromptEncoder(tokenizer, textEncoder, xl.Tokenizer, xl.Encoder, folder.TextEncoder2Path!, folder.ForceZerosForEmptyPrompt);
        }
        else if (info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner)
        {
            // The refiner's only encoder is text_encoder_2, loaded as the pipeline's text encoder.
            _sdxlPromptEncoder = new SdxlPromptEncoder(null, null, tokenizer, textEncoder, folder.TextEncoderPath, folder.ForceZerosForEmptyPrompt);
        }
        _vaeEncoder = vaeEncoder;
        _schedulers = schedulers;
        _folder = folder;
        _textEncoder = textEncoder;
        // A1111 concatenates 75-token chunks along the sequence axis; only a UNet with a dynamic one accepts that.
        _promptEncoder = new PromptEncoder(tokenizer, textEncoder, folder.TextEncoderPath, dynamicSequence: unet.HiddenSpec.FixedDimension(1) is null);
        _unet = unet;
        _vae = vae;
        _schedulerConfig = schedulerConfig;
        Info = info;
    }

    /// <summary>What was detected: components, dtypes, shapes, scheduler, provider, native size.</summary>
    public ModelInfo Info { get; }

    /// <summary>
    /// Loads the model in <paramref name="modelDirectory"/> (diffusers/optimum ONNX layout). Every missing or
    /// malformed file gives a <see cref="ModelLoadException"/> naming it; an unavailable execution provider gives
    /// an <see cref="ExecutionProviderUnavailableException"/> saying which package provides it.
    /// </summary>
    public static StableDiffusionPipeline Load(string modelDirectory, PipelineOptions? options = null)
    {
        options ??= new PipelineOptions();
        var device = options.Validate();
        var folder = ModelFolder.Open(modelDirectory);
        ModelFamily.CheckFolder(folder);
        var tokenizer = LoadTokenizer(folder.TokenizerDirectory);
        var schedulerConfig = LoadSchedulerConfig(folder.SchedulerConfigPath);
        var schedulers = options.Schedulers ?? SchedulerRegistry.Default;
        var schedulerName = DescribeConfigured(schedulers, schedulerConfig, folder.SchedulerConfigPath);
        var sessions = new SessionFactory(device, options.IntraOpThreads, options.InterOpThreads)
        {
            Cache = options.UseModelCache ? new ModelCache(options.CacheDirectory ?? ModelCache.DefaultDirectory) : null,
            Options = options,
        };

        var opened = new List<OnnxComponent>();
        try
        {
            List<(string, string)> components = [(folder.IsRefiner ? "text_encoder_2" : "text_encoder", folder.TextEncoderPath), ("unet", folder.UnetPath), ("vae_decoder", folder.VaeDecoderPath)];
            if (folder.TextEncoder2Path is { } te2Path && !folder.IsRefiner) components.Add(("text_encoder_2", te2Path));
            var loaded = ComponentLoader.LoadAll(sessions, components, opened);
            var textEncoder = new ClipTextEncoder(loaded[0]);
            var unet = new UNet(loaded[1], folder.UnetInChannels);
            var vae = new VaeDecoder(loaded[2]) { Tiling = options.VaeTiling };
            if (tokenizer.MaxLength != textEncoder.SequenceLength)
                throw new ModelLoadException(folder.TokenizerDirectory,
                    $"the tokenizer's model_max_length is {tokenizer.MaxLength}, but the text encoder takes {textEncoder.SequenceLength} tokens.");

            var family = ModelFamily.Detect(folder, loaded[1].Inputs, unet.InputChannels, textEncoder.DeclaredHiddenSize,
                tokenizer.PadId != tokenizer.EosId, schedulerConfig);
            if (family.Unsupported is { } why) throw new ModelLoadException(folder.UnetPath, why);
            (ClipTokenizer, ClipTextEncoder)? second = null;
            int? conditioningWidth = textEncoder.DeclaredHiddenSize;
            if (family.Architecture == ModelArchitecture.StableDiffusionXL)
            {
                var tokenizer2 = LoadTokenizer(folder.Tokenizer2Directory!);
                var textEncoder2 = new ClipTextEncoder(loaded[3]);
                if (tokenizer2.MaxLength != textEncoder2.SequenceLength || textEncoder2.SequenceLength != textEncoder.SequenceLength)
                    throw new ModelLoadException(folder.Tokenizer2Directory!,
                        $"tokenizer_2 takes {tokenizer2.MaxLength} tokens and text_encoder_2 {textEncoder2.SequenceLength}, but text_encoder takes {textEncoder.SequenceLength}: SDXL's encoders must agree.");
                // Both must expose what SDXL reads (hidden_states.N, text_embeds) before any generation.
                var (p1, _) = textEncoder.XlOutputs(pooled: false);
                var (p2, _) = textEncoder2.XlOutputs(pooled: true);
                conditioningWidth = p1.FixedDimension(2) is { } w1 && p2.FixedDimension(2) is { } w2 ? (int)(w1 + w2) : null;
                second = (tokenizer2, textEncoder2);
            }
            else if (family.Architecture == ModelArchitecture.StableDiffusionXLRefiner)
            {
                var (p2, _) = textEncoder.XlOutputs(pooled: true);
                conditioningWidth = p2.FixedDimension(2) is { } w2 ? (int)w2 : null;
            }
            if (conditioningWidth is { } te && unet.DeclaredHiddenSize is { } un && te != un)
                throw new ModelLoadException(folder.UnetPath,
                    $"encoder_hidden_states has width {un}, but the text encoder{(second is null ? "" : "s")} ({folder.TextEncoderPath}{(second is null ? "" : " + text_encoder_2")}) output {te}: the components come from different models.");

            var sizeMultiple = VaeDecoder.Factor << unet.DownsamplingLevels;
            var (nativeH, nativeW) = NativeLatentSize(folder, unet, vae, family.Architecture);
            if (unet.FixedLatentSize is null && folder.UnetSampleSize is { } sample && sample * VaeDecoder.Factor % sizeMultiple != 0)
                throw new ModelLoadException(Path.Combine(Path.GetDirectoryName(folder.UnetPath)!, "config.json"),
                    $"\"sample_size\" is {sample} ({sample * VaeDecoder.Factor} px), but this UNet halves its latents {unet.DownsamplingLevels} times, so sides must be multiples of {sizeMultiple} px.");
            var info = new ModelInfo
            {
                Root = folder.Root,
                PipelineClass = folder.PipelineClass,
                Device = sessions.Active.ToString(),
                DeviceNotes = sessions.Notes.ToList(),
                Components = opened.Select(c => new ComponentInfo(c.Name, c.FilePath, c.Inputs.Values.ToList(), c.Outputs.Values.ToList()) { Cache = c.CacheStatus }).ToList(),
                Scheduler = schedulerName,
                SizeMultiple = sizeMultiple,
                NativeWidth = nativeW * VaeDecoder.Factor,
                NativeHeight = nativeH * VaeDecoder.Factor,
                VaeScalingFactor = folder.VaeScalingFactor,
                TokenizerVocabularySize = tokenizer.VocabularySize,
                UnetFixedBatch = unet.FixedBatch,
                Family = family,
                Tasks = family.Tasks(folder.VaeEncoderPath is not null),
            };
            // Opened on first use: only img2img and inpainting need the encoder.
            var vaeEncoder = new Lazy<VaeEncoder?>(() => folder.VaeEncoderPath is { } encoderPath
                ? new VaeEncoder(OnnxComponent.Load("vae_encoder", encoderPath, sessions)) : null);
            return new StableDiffusionPipeline(folder, tokenizer, textEncoder, unet, vae, schedulerConfig, schedulers, info, vaeEncoder, second);
        }
        catch
        {
            foreach (var c in opened) c.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Generates images. Cancelling stops between UNet evaluations and interrupts a running ONNX Runtime call.
    /// Bad requests throw <see cref="ArgumentException"/> naming the field before any work is done.
    /// </summary>
    public Task<GenerationResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(_disposed, this);
        (request, var scheduler, var latentH, var latentW) = Plan(request);
        Enter();
        return Task.Run(() =>
        {
            _generationsOnThisThread++;
            try
            {
                return Generate(request, scheduler, latentH, latentW, progress, cancellationToken);
            }
            finally
            {
                _generationsOnThisThread--;
                Exit();
            }
        }, CancellationToken.None);
    }

    // Everything checked and decided before any work: defaults, validation, the scheduler and its timesteps.
    private (GenerationRequest Request, (IScheduler Scheduler, string Name) Scheduler, int LatentH, int LatentW) Plan(GenerationRequest request)
    {
        // StableDiffusionXLImg2ImgPipeline's strength default: the refiner only polishes the last steps.
        if (Info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner && request.Strength is null && request.InitImage is not null)
            request = request with { Strength = 0.3f };
        var (latentH, latentW) = Validate(request);
        var scheduler = CreateScheduler(request);
        if (request.InitImage is not null)
        {
            LatentPreparation.CheckScheduler(scheduler.Scheduler, scheduler.Name, request.Steps);
            _ = _vaeEncoder.Value; // a broken vae_encoder is reported before any work
        }
        return (request, scheduler, latentH, latentW);
    }

    private GenerationResult Generate(GenerationRequest request, (IScheduler Scheduler, string Name) scheduler, int latentH, int latentW,
        IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        cancellationToken.ThrowIfCancellationRequested();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        var token = linked.Token;
        using var runOptions = new RunOptions();
        // Interrupts a long Run (a big UNet or VAE call) instead of waiting for it to finish.
        using var terminate = token.Register(() => runOptions.Terminate = true);
        try
        {
            return GenerateCore(request, scheduler, latentH, latentW, progress, runOptions, clock, token);
        }
        catch (OnnxRuntimeException) when (token.IsCancellationRequested)
        {
            throw new OperationCanceledException(token);
        }
    }

    // The stages in order: prompt encoding → initial latents → denoising → decoding.
    private GenerationResult GenerateCore(GenerationRequest request, (IScheduler Scheduler, string Name) scheduler, int latentH, int latentW,
        IProgress<GenerationProgress>? progress, RunOptions runOptions, Stopwatch clock, CancellationToken token)
    {
        var run = Prepare(request, scheduler, latentH, latentW, progress, runOptions, clock, token);
        Denoise([run], runOptions);
        run.Member!.ThrowIfFailed();
        return Finish(run);
    }

    // Prompt encoding and initial latents: everything of a request before the UNet.
    private GenerationRun Prepare(GenerationRequest request, (IScheduler Scheduler, string Name) scheduler, int latentH, int latentW,
        IProgress<GenerationProgress>? progress, RunOptions runOptions, Stopwatch clock, CancellationToken token)
    {
        var n = request.ImageCount;
        var useCfg = Info.Family.UsesClassifierFreeGuidance(request.GuidanceScale);
        var warnings = new List<string>();
        var timings = new TimingRecorder();
        progress?.Report(new GenerationProgress(0, 0, clock.Elapsed) { Phase = GenerationPhase.Encoding });

        // Text conditioning: [negative×n, prompt×n] with CFG (diffusers' order), else [prompt×n].
        var prompts = useCfg ? new[] { request.NegativePrompt, request.Prompt } : [request.Prompt];
        var inputs = _sdxlPromptEncoder is { } xl
            ? xl.Encode(prompts, n, request.PromptWeighting, latentH * VaeDecoder.Factor, latentW * VaeDecoder.Factor, warnings, timings, runOptions)
            : _promptEncoder.Encode(prompts, n, request.PromptWeighting, warnings, timings, runOptions);
        if (Info.Family.GuidanceEmbeddingWidth is { } width)
            inputs = inputs with { TimestepCond = GuidanceEmbedding.Compute(request.GuidanceScale, width, inputs.Batch) };
        timings.TextEncoderDone();

        var seed = request.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue);
        var generator = new TorchGenerator(seed);
        var start = InitialLatents.Prepare(request, scheduler.Scheduler, () => _vaeEncoder.Value!, _folder.VaeScalingFactor,
            _unet.InputChannels, generator, n, latentH, latentW, runOptions);
        return new GenerationRun
        {
            Request = request, Scheduler = scheduler, LatentH = latentH, LatentW = latentW, Progress = progress, RunOptions = runOptions,
            Clock = clock, Token = token, UseCfg = useCfg, Warnings = warnings, Timings = timings,
            Inputs = inputs with { ExtraChannels = start.Channels }, Seed = seed, Generator = generator, Start = start,
        };
    }

    // Denoising: one UNet call per step over the rows of every run (one run, or a compatible batch: same size, timesteps,
    // begin index, CFG decision and conditioning shape). A run that fails or is cancelled leaves with its Member.Error set.
    private void Denoise(IReadOnlyList<GenerationRun> runs, RunOptions unetRunOptions, Action<GenerationRun>? onRetired = null)
    {
        var first = runs[0];
        using var conditioning = _unet.Prepare(UNetInputs.Concat(runs.Select(r => r.Inputs).ToList()));
        conditioning.Timings = runs.Select(r => r.Timings).ToArray();
        var members = new List<DenoisingMember>(runs.Count);
        foreach (var run in runs)
        {
            var (request, n, latents, timings) = (run.Request, run.Request.ImageCount, run.Start.Latents, run.Timings);
            timings.BeginDenoising(run.Scheduler.Scheduler.Timesteps.Count - run.Start.BeginIndex);
            run.Member = new DenoisingMember(run.Scheduler.Scheduler, run.Scheduler.Name, run.Generator, latents, n, request.GuidanceScale, run.Token)
            {
                Blend = run.Start.Blend,
                OnRetired = onRetired is null ? null : () => onRetired(run),
                OnEvaluation = (step, total) =>
                {
                    timings.EvaluationDone();
                    run.Progress?.Report(new GenerationProgress(step, total, run.Clock.Elapsed)
                    {
                        Preview = WantsPreview(request, step) ? DecodePreview(latents, n, run.LatentH, run.LatentW, run.RunOptions) : null, // StableDiffusionPipeline.Previews.cs
                    });
                },
            };
            members.Add(run.Member);
        }
        var loop = new DenoisingLoop(_unet, members, first.UseCfg, first.Start.BeginIndex);
        try
        {
            loop.Run(first.LatentH, first.LatentW, conditioning, unetRunOptions);
        }
        finally
        {
            foreach (var run in runs)
            {
                run.UnetCalls = run.Member!.Evaluations * conditioning.Chunks.Count;
                run.BatchSize = runs.Count;
            }
        }
    }

    // Decoding and the result.
    private GenerationResult Finish(GenerationRun run)
    {
        var (request, n, latentH, latentW, latents, clock, timings) = (run.Request, run.Request.ImageCount, run.LatentH, run.LatentW, run.Start.Latents, run.Clock, run.Timings);
        var evaluations = run.Member!.Evaluations;
        run.Progress?.Report(new GenerationProgress(evaluations, evaluations, clock.Elapsed) { Phase = GenerationPhase.Decoding });
        var modelName = Path.GetFileName(_folder.Root.TrimEnd(Path.DirectorySeparatorChar));
        var images = LatentDecoding.Decode(latents, n, latentH, latentW, request, _vae, _folder.VaeScalingFactor, _folder.VaeDecoderPath,
            i => GenerationParameters.Format(request, run.UseCfg, run.Scheduler.Name, run.Seed, latentW * VaeDecoder.Factor, latentH * VaeDecoder.Factor, modelName, i, n),
            run.RunOptions, run.Token);
        timings.DecodeDone();
        run.Progress?.Report(new GenerationProgress(evaluations, evaluations, clock.Elapsed) { Phase = GenerationPhase.Done });
        return new GenerationResult(images, run.Seed, latents, [n, UNet.LatentChannels, latentH, latentW], clock.Elapsed)
        {
            Warnings = run.Warnings,
            UnetEvaluations = evaluations,
            UnetCalls = run.UnetCalls,
            BatchSize = run.BatchSize,
            Scheduler = run.Scheduler.Name,
            Timings = timings.Result(),
        };
    }

    // Builds the request's scheduler and sets its timesteps before any work, so a config the scheduler cannot use or a
    // step count it cannot take is refused up front, naming the request field. Eta reaches DDIM and TCD as diffusers'
    // pipeline passes it to step: 0 unless the request sets it.
    private (IScheduler Scheduler, string Name) CreateScheduler(GenerationRequest request)
    {
        IScheduler scheduler;
        string name;
        var config = _schedulerConfig with { Eta = request.Eta ?? 0 };
        try
        {
            (scheduler, name) = request.Scheduler is null
                ? (_schedulers.CreateFromConfig(config), Info.Scheduler)
                : (_schedulers.Create(request.Scheduler, config), _schedulers.Describe(request.Scheduler).DisplayName);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidDataException || (e is ArgumentException a && a.ParamName == "config"))
        {
            throw new ArgumentException($"Scheduler '{request.Scheduler}' cannot run with this model's scheduler config " +
                $"({_folder.SchedulerConfigPath ?? "built-in SD 1.5 defaults"}): {StripParameter(e.Message)}", nameof(request.Scheduler), e);
        }
        catch (ArgumentOutOfRangeException e) when (e.ParamName == "eta")
        {
            throw new ArgumentOutOfRangeException(nameof(request.Eta), request.Eta, StripParameter(e.Message));
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(StripParameter(e.Message), nameof(request.Scheduler), e);
        }
        try
        {
            scheduler.SetTimesteps(request.Steps);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentOutOfRangeException(nameof(request.Steps), request.Steps, $"Steps {request.Steps} with {name}: {StripParameter(e.Message)}");
        }
        return (scheduler, name);
    }

    private static string StripParameter(string message) =>
        System.Text.RegularExpressions.Regex.Replace(message, @" \(Parameter '[^']*'\)$|\s*Actual value was [^\n]*$", "", System.Text.RegularExpressions.RegexOptions.Multiline).TrimEnd();

    // The name users know for the config's class (its plain form, e.g. "PNDM"), validating the class on load.
    private static string DescribeConfigured(SchedulerRegistry schedulers, SchedulerConfig config, string? configPath)
    {
        try
        {
            _ = schedulers.CreateFromConfig(config);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidDataException or ArgumentException)
        {
            throw new ModelLoadException(configPath ?? "scheduler config", e.Message, e);
        }
        return schedulers.All.First(i => i.DiffusersClass == config.ClassName).DisplayName;
    }

    private static ClipTokenizer LoadTokenizer(string directory)
    {
        try
        {
            return ClipTokenizer.Load(directory);
        }
        catch (TokenizerFileException e)
        {
            throw new ModelLoadException(e.FilePath, e.Message, e);
        }
        catch (FileNotFoundException e)
        {
            throw new ModelLoadException(e.FileName ?? directory, e.Message, e);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new ModelLoadException(directory, e.Message, e);
        }
    }

    private static SchedulerConfig LoadSchedulerConfig(string? path)
    {
        if (path is null) return StableDiffusion15Scheduler;
        try
        {
            return SchedulerConfig.Load(path);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException(path, e.Message.StartsWith(path, StringComparison.Ordinal) ? e.Message[(path.Length + 1)..].Trim() : e.Message, e);
        }
    }

    private (int LatentH, int LatentW) Validate(GenerationRequest r)
    {
        if (r.Prompt is null) throw new ArgumentException("Prompt must not be null.", nameof(r.Prompt));
        if (r.NegativePrompt is null) throw new ArgumentException("NegativePrompt must not be null (use \"\").", nameof(r.NegativePrompt));
        if (r.PromptWeighting)
        {
            PromptEncoder.Validate(r.Prompt, nameof(r.Prompt));
            PromptEncoder.Validate(r.NegativePrompt, nameof(r.NegativePrompt));
        }
        if (r.Steps is < 1 or > MaxSteps)
            throw new ArgumentOutOfRangeException(nameof(r.Steps), r.Steps, $"Steps is {r.Steps}; it must be between 1 and {MaxSteps}.");
        if (!float.IsFinite(r.GuidanceScale) || r.GuidanceScale is < 0 or > MaxGuidance)
            throw new ArgumentOutOfRangeException(nameof(r.GuidanceScale), r.GuidanceScale,
                $"GuidanceScale is {r.GuidanceScale.ToString(System.Globalization.CultureInfo.InvariantCulture)}; it must be a number from 0 to {MaxGuidance} (usually 1–15).");
        if (r.ImageCount is < 1 or > MaxImages)
            throw new ArgumentOutOfRangeException(nameof(r.ImageCount), r.ImageCount, $"ImageCount is {r.ImageCount}; it must be between 1 and {MaxImages}.");
        ImageRequestValidation.Check(r, _folder.VaeEncoderPath, Info.Family.Inpainting);
        // diffusers runs the refiner as StableDiffusionXLImg2ImgPipeline: it refines an image, it does not draw one.
        if (Info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner && r.InitImage is null)
            throw new ArgumentException("InitImage is required: an SDXL refiner runs img2img (refining an image; Strength defaults to 0.3 as in diffusers), not text-to-image.", nameof(r.InitImage));
        if (Info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner && r.MaskImage is not null)
            throw new ArgumentException("MaskImage is not supported with an SDXL refiner yet: LocalDiffusion runs the refiner as img2img only.", nameof(r.MaskImage));
        // With an init image the size defaults to the image's own, rounded down to a size the UNet can draw.
        var multiple = Info.SizeMultiple;
        var width = r.Width ?? (r.InitImage is { } init ? Math.Max(multiple, init.Width / multiple * multiple) : Info.NativeWidth);
        var height = r.Height ?? (r.InitImage is { } image ? Math.Max(multiple, image.Height / multiple * multiple) : Info.NativeHeight);
        CheckSide(nameof(r.Width), width);
        CheckSide(nameof(r.Height), height);
        int latentH = height / VaeDecoder.Factor, latentW = width / VaeDecoder.Factor;
        foreach (var (fixedSize, file) in new[] { (_unet.FixedLatentSize, _folder.UnetPath), (_vae.FixedLatentSize, _folder.VaeDecoderPath) })
        {
            if (fixedSize is { } s && (s.Height != latentH || s.Width != latentW))
                throw new ArgumentException(
                    $"{file} has static latent dimensions {s.Height}x{s.Width}, so it only makes {s.Width * 8}x{s.Height * 8} images; {width}x{height} was requested.",
                    width != s.Width * 8 ? nameof(r.Width) : nameof(r.Height));
        }
        if (r.InitialLatents is { } latents)
        {
            if (latents.Length != r.ImageCount * UNet.LatentChannels * latentH * latentW)
                throw new ArgumentException(
                    $"InitialLatents has {latents.Length} values; [{r.ImageCount},{UNet.LatentChannels},{latentH},{latentW}] = {r.ImageCount * UNet.LatentChannels * latentH * latentW} are needed for {r.ImageCount} image(s) of {width}x{height}.",
                    nameof(r.InitialLatents));
            if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(latents))
                throw new ArgumentException("InitialLatents contains NaN or infinity; unit Gaussian noise was expected.", nameof(r.InitialLatents));
        }
        return (latentH, latentW);
    }

    private void CheckSide(string name, int value)
    {
        var multiple = Info.SizeMultiple;
        if (value < multiple || value > MaxSide || value % multiple != 0)
            throw new ArgumentOutOfRangeException(name, value,
                $"{name} is {value}; it must be a multiple of {multiple} between {multiple} and {MaxSide} pixels" +
                (multiple > VaeDecoder.Factor
                    ? $" (this model's UNet halves the latents {_unet.DownsamplingLevels} times, so sides must be multiples of 8×{multiple / VaeDecoder.Factor}; e.g. {Math.Max(multiple, value / multiple * multiple)} or {(value / multiple + 1) * multiple})."
                    : "."));
    }

    private static (int H, int W) NativeLatentSize(ModelFolder folder, UNet unet, VaeDecoder vae, ModelArchitecture architecture) =>
        unet.FixedLatentSize ?? vae.FixedLatentSize
        ?? (folder.UnetSampleSize is { } s ? (s, s)
            // SD 1.x's 512×512, SDXL's 1024×1024, when nothing says otherwise.
            : architecture is ModelArchitecture.StableDiffusionXL or ModelArchitecture.StableDiffusionXLRefiner ? (128, 128) : (64, 64));

    private void Enter()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _active++;
        }
    }

    private void Exit()
    {
        lock (_gate)
        {
            _active--;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Cancels generations in flight, waits for them to stop, and releases the native sessions.</summary>
    public void Dispose()
    {
        // Waiting for the generation this thread is running (e.g. from a progress callback) would never end.
        if (_generationsOnThisThread > 0)
            throw new InvalidOperationException("Dispose was called from inside a generation (a progress callback?); dispose the pipeline after GenerateAsync completes.");
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _disposing.Cancel();
            while (_active > 0) Monitor.Wait(_gate);
        }
        _textEncoder.Dispose();
        _textEncoder2?.Dispose();
        _unet.Dispose();
        _vae.Dispose();
        if (_vaeEncoder.IsValueCreated) _vaeEncoder.Value?.Dispose();
        _disposing.Dispose();
    }
}
