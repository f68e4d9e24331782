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
    private const int MaxSide = RequestLimits.MaxSide;
    private const int MaxImages = RequestLimits.MaxImages;
    private const int MaxSteps = RequestLimits.MaxSteps;
    private const float MaxGuidance = RequestLimits.MaxGuidance;

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
    private readonly VaeDecoding _vae;
    private readonly Lazy<VaeEncoder?> _vaeEncoder;
    private readonly SchedulerConfig _schedulerConfig;
    private readonly SchedulerRegistry _schedulers;
    private readonly CancellationTokenSource _disposing = new();
    private ConditioningCache? _conditioningCache;
    private readonly object _gate = new();
    private int _active;
    [ThreadStatic] private static int _generationsOnThisThread;
    private bool _disposed;

    private StableDiffusionPipeline(ModelFolder folder, ClipTokenizer tokenizer, ClipTextEncoder textEncoder, UNet unet,
        VaeDecoding vae, SchedulerConfig schedulerConfig, SchedulerRegistry schedulers, ModelInfo info, Lazy<VaeEncoder?> vaeEncoder,
        (ClipTokenizer Tokenizer, ClipTextEncoder Encoder)? second)
    {
        // A1111 concatenates 75-token chunks along the sequence axis; only a UNet with a dynamic one accepts that.
        var dynamicSequence = unet.HiddenSpec.FixedDimension(1) is null;
        if (second is { } xl)
        {
            _textEncoder2 = xl.Encoder;
            _sdxlPromptEncoder = new SdxlPromptEncoder(tokenizer, textEncoder, xl.Tokenizer, xl.Encoder, folder.TextEncoder2Path!, folder.ForceZerosForEmptyPrompt, dynamicSequence);
        }
        else if (info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner)
        {
            // The refiner's only encoder is text_encoder_2, loaded as the pipeline's text encoder.
            _sdxlPromptEncoder = new SdxlPromptEncoder(null, null, tokenizer, textEncoder, folder.TextEncoderPath, folder.ForceZerosForEmptyPrompt, dynamicSequence);
        }
        _vaeEncoder = vaeEncoder;
        _schedulers = schedulers;
        _folder = folder;
        _textEncoder = textEncoder;
        _promptEncoder = new PromptEncoder(tokenizer, textEncoder, folder.TextEncoderPath, dynamicSequence);
        _unet = unet;
        _vae = vae;
        _schedulerConfig = schedulerConfig;
        Info = info;
    }

    private int TrainTimesteps => _schedulerConfig.NumTrainTimesteps ?? 1000;

    /// <summary>What was detected: components, dtypes, shapes, scheduler, provider, native size.</summary>
    public ModelInfo Info { get; }

    /// <summary>
    /// Generates images. Cancelling stops between UNet evaluations and interrupts a running ONNX Runtime call.
    /// Bad requests throw <see cref="ArgumentException"/> naming the field before any work is done.
    /// </summary>
    public Task<GenerationResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (_family is not null) return GenerateFamilyAsync(_family, request, progress, cancellationToken);
        var run = Prepare(request);
        Enter();
        return Task.Run(() =>
        {
            _generationsOnThisThread++;
            try
            {
                return Generate(run, progress, null, decode: true, cancellationToken).Result;
            }
            finally
            {
                _generationsOnThisThread--;
                Exit();
            }
        }, CancellationToken.None);
    }

    /// <summary>
    /// The request with what it leaves unset taken from this model (<see cref="Model.ModelFamily.DefaultSteps"/>,
    /// <see cref="Model.ModelFamily.DefaultGuidanceScale"/>): Turbo's one unguided step, LCM's 4 steps at 8.5, SD's 20 at
    /// 7.5. What a generation of <paramref name="request"/> runs; front-ends use it to report the values.
    /// </summary>
    public GenerationRequest WithDefaults(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Steps is not null && request.GuidanceScale is not null ? request
            : request with { Steps = request.Steps ?? Info.Family.DefaultSteps, GuidanceScale = request.GuidanceScale ?? Info.Family.DefaultGuidanceScale };
    }

    // A request checked and ready to run: everything that can be refused is refused here, before any work.
    private sealed record PreparedRun(GenerationRequest Request, (IScheduler Scheduler, string Name) Scheduler, int LatentH, int LatentW);

    private PreparedRun Prepare(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(_disposed, this);
        request = ResolveLoras(WithDefaults(request));
        // StableDiffusionXLImg2ImgPipeline's strength default: the refiner only polishes the last steps.
        if (Info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner && request.Strength is null && request.InitImage is not null)
            request = request with { Strength = 0.3f };
        var (latentH, latentW) = Validate(request);
        var scheduler = CreateScheduler(request);
        CheckSplit(request, scheduler.Scheduler, scheduler.Name);
        if (request.InitImage is not null || (request.InitLatents is not null && request.DenoisingStart is null))
            LatentPreparation.CheckScheduler(scheduler.Scheduler, scheduler.Name, request.StepCount);
        if (request.InitImage is not null)
            _ = _vaeEncoder.Value; // a broken vae_encoder is reported before any work
        return new PreparedRun(request, scheduler, latentH, latentW);
    }

    // Runs a prepared request; a refiner continues the base's generator (as diffusers does when one generator is passed
    // to both pipelines), and a base handing over skips decoding.
    private (GenerationResult Result, TorchGenerator? Generator) Generate(PreparedRun run, IProgress<GenerationProgress>? progress,
        TorchGenerator? continued, bool decode, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        cancellationToken.ThrowIfCancellationRequested();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
        var token = linked.Token;
        using var runOptions = new RunOptions();
        // Interrupts a long Run (a big UNet or VAE call) instead of waiting for it to finish.
        using var terminate = token.Register(() => runOptions.Terminate = true);
        using var activity = LocalDiffusionTelemetry.StartGenerate(Info, run.Request, run.LatentW * VaeDecoder.Factor, run.LatentH * VaeDecoder.Factor);
        try
        {
            using var loras = UseLoras(run.Request);
            return GenerateCore(run.Request, run.Scheduler, run.LatentH, run.LatentW, progress, runOptions, clock, continued, decode, token);
        }
        catch (Exception e) when (LocalDiffusionTelemetry.FailFilter(activity, e))
        {
            throw;
        }
        catch (OnnxRuntimeException) when (token.IsCancellationRequested)
        {
            throw new OperationCanceledException(token);
        }
    }

    // The stages in order: prompt encoding → initial latents → denoising → decoding.
    private (GenerationResult, TorchGenerator?) GenerateCore(GenerationRequest request, (IScheduler Scheduler, string Name) scheduler, int latentH, int latentW,
        IProgress<GenerationProgress>? progress, RunOptions runOptions, Stopwatch clock, TorchGenerator? continued, bool decode, CancellationToken token)
    {
        if (request is { SeedPerImage: true, ImageCount: > 1 } && continued is null && decode)
            return (GeneratePerImageSeeds(request, latentH, latentW, progress, runOptions, clock, token), null); // one generator per image: none to continue
        var run = Begin(request, scheduler, latentH, latentW, progress, runOptions, clock, continued, token);
        Denoise([run], runOptions);
        run.Member!.ThrowIfFailed();
        return (Finish(run, decode), run.Generator);
    }

    // AUTOMATIC1111's batch: image i is the one-image request for seed + i (its own generator and scheduler), all of them
    // denoised in the same UNet calls; the request's progress follows the first image, which is decoded last.
    private GenerationResult GeneratePerImageSeeds(GenerationRequest request, int latentH, int latentW, IProgress<GenerationProgress>? progress,
        RunOptions runOptions, Stopwatch clock, CancellationToken token)
    {
        var seed = request.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue);
        var runs = new List<GenerationRun>(request.ImageCount);
        for (var i = 0; i < request.ImageCount; i++)
        {
            var single = request with { ImageCount = 1, Seed = seed + i, SeedPerImage = false };
            runs.Add(Begin(single, CreateScheduler(single), latentH, latentW, i == 0 ? progress : null, runOptions, clock, null, token));
        }
        Denoise(runs, runOptions);
        foreach (var run in runs) run.Member!.ThrowIfFailed();
        var results = new GenerationResult[runs.Count];
        using (_vae.Use())
        {
            for (var i = runs.Count - 1; i >= 0; i--) results[i] = Finish(runs[i], decode: true);
        }
        var first = results[0];
        return first with
        {
            Images = [.. results.SelectMany(r => r.Images)],
            FinalLatents = [.. results.SelectMany(r => r.FinalLatents)],
            LatentShape = [request.ImageCount, .. first.LatentShape[1..]],
            Elapsed = clock.Elapsed,
            Warnings = [.. results.SelectMany(r => r.Warnings).Distinct()],
            Seeds = [.. results.Select(r => r.Seed)],
            BatchSize = 1,
        };
    }

    // Prompt encoding and initial latents: everything of a request before the UNet.
    private GenerationRun Begin(GenerationRequest request, (IScheduler Scheduler, string Name) scheduler, int latentH, int latentW,
        IProgress<GenerationProgress>? progress, RunOptions runOptions, Stopwatch clock, TorchGenerator? continued, CancellationToken token)
    {
        var n = request.ImageCount;
        var useCfg = Info.Family.UsesClassifierFreeGuidance(request.Guidance);
        var warnings = new List<string>(_loraNotes);
        // LCM takes guidance as an embedding and has no unconditional pass to feed a negative prompt into (diffusers'
        // LCM pipeline has no negative_prompt at all): say so rather than drop what the user wrote without a word.
        if (Info.Family.Distillation == Distillation.LatentConsistency && !string.IsNullOrWhiteSpace(request.NegativePrompt))
            warnings.Add("The negative prompt is not used by LCM models (they run no unconditional pass); it was ignored.");
        var timings = new TimingRecorder();
        progress?.Report(new GenerationProgress(0, 0, clock.Elapsed) { Phase = GenerationPhase.Encoding });

        // Text conditioning: [negative×n, prompt×n] with CFG (diffusers' order), else [prompt×n].
        var prompts = useCfg ? new[] { request.NegativePrompt, request.Prompt } : [request.Prompt];
        var timeIds = _sdxlPromptEncoder is { } sdxl ? SdxlTimeIds.For(request, prompts.Length, sdxl.Refiner, latentH * VaeDecoder.Factor, latentW * VaeDecoder.Factor) : null;
        UNetInputs Encode(List<string> into)
        {
            using (UseTextEncoders())
                return _sdxlPromptEncoder is { } xl
                    ? xl.Encode(prompts, n, request.PromptWeighting, timeIds!, into, timings, runOptions)
                    : _promptEncoder.Encode(prompts, n, request.PromptWeighting, into, timings, runOptions);
        }
        UNetInputs inputs;
        using (LocalDiffusionTelemetry.StartStage("localdiffusion.encode_prompt"))
            inputs = _conditioningCache is { } cache
                ? cache.GetOrEncode(ConditioningCache.Key(prompts, n, request.PromptWeighting, timeIds?.SelectMany(t => t).ToArray(), LoraIdentity(request)), warnings, Encode)
                : Encode(warnings);
        if (Info.Family.GuidanceEmbeddingWidth is { } width)
            inputs = inputs with { TimestepCond = GuidanceEmbedding.Compute(request.Guidance, width, inputs.Batch) };
        timings.TextEncoderDone();

        var seed = request.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue);
        var generator = continued ?? new TorchGenerator(seed);
        var start = InitialLatents.Prepare(request, scheduler.Scheduler, () => _vaeEncoder.Value!, Info.Family.VaeScalingFactor,
            _unet.InputChannels, generator, n, latentH, latentW, TrainTimesteps, runOptions);
        var end = request.DenoisingEnd is { } fraction
            ? ScheduleSplit.EndIndex(scheduler.Scheduler, fraction, TrainTimesteps)
            : scheduler.Scheduler.Timesteps.Count;
        var evaluations = end - start.BeginIndex;
        if (request.PreviewSteps is { Count: > 0 } previews && previews.Max() is var last && last > evaluations)
            throw new ArgumentOutOfRangeException(nameof(request.PreviewSteps), last,
                $"PreviewSteps contains {last}; this generation runs {evaluations} denoising evaluations, so preview steps must be between 1 and {evaluations}.");
        return new GenerationRun
        {
            Request = request, Scheduler = scheduler, LatentH = latentH, LatentW = latentW, Progress = progress, RunOptions = runOptions,
            Clock = clock, Token = token, UseCfg = useCfg, Warnings = warnings, Timings = timings,
            Inputs = inputs with { ExtraChannels = start.Channels }, Seed = seed, Generator = generator, Start = start, End = end,
        };
    }

    // Denoising: one UNet call per step over the rows of every run (one run, or a compatible batch: same size, timesteps,
    // begin and end index, CFG decision and conditioning shape). A run that fails or is cancelled leaves with its Member.Error set.
    private void Denoise(IReadOnlyList<GenerationRun> runs, RunOptions unetRunOptions, Action<GenerationRun>? onRetired = null)
    {
        var first = runs[0];
        // The UNet's session is held over the loop (its I/O bindings live in the conditioning, disposed first), and the
        // VAE's too when previews decode between steps.
        using var unet = _unet.Use();
        using var previews = runs.Any(r => r.Request.PreviewSteps is { Count: > 0 }) ? _vae.Use() : (OnnxComponent.Lease?)null;
        using var conditioning = _unet.Prepare(UNetInputs.Concat(runs.Select(r => r.Inputs).ToList()));
        conditioning.Timings = runs.Select(r => r.Timings).ToArray();
        using var span = LocalDiffusionTelemetry.StartStage("localdiffusion.denoise");
        var members = new List<DenoisingMember>(runs.Count);
        foreach (var run in runs)
        {
            var traced = ReferenceEquals(run, first) ? span : null; // one event per evaluation, from the first run (all step together)
            var (request, n, latents, timings) = (run.Request, run.Request.ImageCount, run.Start.Latents, run.Timings);
            timings.BeginDenoising(run.End - run.Start.BeginIndex);
            run.Member = new DenoisingMember(run.Scheduler.Scheduler, run.Scheduler.Name, run.Generator, latents, n, request.Guidance, run.Token)
            {
                Blend = run.Start.Blend,
                FinishEarly = request.FinishEarly,
                OnRetired = onRetired is null ? null : () => onRetired(run),
                OnEvaluation = (step, total) =>
                {
                    timings.EvaluationDone();
                    LocalDiffusionTelemetry.Step(traced, step, total);
                    run.Progress?.Report(new GenerationProgress(step, total, run.Clock.Elapsed)
                    {
                        EvaluationsPerStep = run.Scheduler.Scheduler.Order,
                        Preview = WantsPreview(request, step) ? DecodePreview(latents, n, run.LatentH, run.LatentW, run.RunOptions) : null, // StableDiffusionPipeline.Previews.cs
                    });
                },
            };
            members.Add(run.Member);
        }
        var loop = new DenoisingLoop(_unet, members, first.UseCfg, first.Start.BeginIndex, first.End);
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

    // Decoding (skipped by a base handing over to a refiner) and the result.
    private GenerationResult Finish(GenerationRun run, bool decode)
    {
        var (request, n, latentH, latentW, latents, clock, timings) = (run.Request, run.Request.ImageCount, run.LatentH, run.LatentW, run.Start.Latents, run.Clock, run.Timings);
        var evaluations = run.Member!.Evaluations;
        if (run.Member.StoppedEarly)
            run.Warnings.Add($"Stopped early on request after {evaluations} of {run.End - run.Start.BeginIndex} denoising evaluations: the picture is partly denoised.");
        run.Progress?.Report(new GenerationProgress(evaluations, evaluations, clock.Elapsed) { Phase = GenerationPhase.Decoding, EvaluationsPerStep = run.Scheduler.Scheduler.Order });
        var modelName = Path.GetFileName(_folder.Root.TrimEnd(Path.DirectorySeparatorChar));
        using var vae = decode ? _vae.Use() : (OnnxComponent.Lease?)null;
        using var decoding = decode ? LocalDiffusionTelemetry.StartStage("localdiffusion.decode") : null;
        var images = !decode ? [] : LatentDecoding.Decode(latents, n, latentH, latentW, request, _vae, Info.Family.VaeScalingFactor,
            i => GenerationParameters.Format(request, run.UseCfg, run.Scheduler.Name, run.Seed, latentW * VaeDecoder.Factor, latentH * VaeDecoder.Factor, modelName, i, n),
            run.Warnings, run.RunOptions, run.Token);
        timings.DecodeDone();
        run.Progress?.Report(new GenerationProgress(evaluations, evaluations, clock.Elapsed) { Phase = GenerationPhase.Done, EvaluationsPerStep = run.Scheduler.Scheduler.Order });
        return new GenerationResult(images, run.Seed, latents, [n, UNet.LatentChannels, latentH, latentW], clock.Elapsed)
        {
            Warnings = run.Warnings,
            UnetEvaluations = evaluations,
            UnetCalls = run.UnetCalls,
            BatchSize = run.BatchSize,
            Scheduler = run.Scheduler.Name,
            Seeds = [.. Enumerable.Repeat(run.Seed, n)],
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
        // A flow-matching sampler follows a velocity field; this UNet predicts noise (or v), so its picture would be garbage.
        if (scheduler is IFlowMatchScheduler)
            throw new ArgumentException($"Scheduler '{request.Scheduler}' is a flow-matching sampler, for SD 3 and FLUX; {Info.Family.Name} runs the diffusion samplers (euler, dpmpp_2m, …).", nameof(request.Scheduler));
        try
        {
            scheduler.SetTimesteps(request.StepCount);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentOutOfRangeException(nameof(request.Steps), request.Steps, $"Steps {request.Steps} with {name}: {StripParameter(e.Message)}");
        }
        return (scheduler, name);
    }

    // A hand-off fraction that leaves the model no timestep to run is refused up front, naming the field.
    private void CheckSplit(GenerationRequest request, IScheduler scheduler, string name)
    {
        var train = TrainTimesteps;
        var count = scheduler.Timesteps.Count;
        var begin = request.DenoisingStart is { } start ? ScheduleSplit.StartIndex(scheduler, start, train)
            : request.InitImage is not null || request.InitLatents is not null ? LatentPreparation.BeginIndex(request.StepCount, request.EffectiveStrength, scheduler.Order).BeginIndex
            : 0;
        var end = request.DenoisingEnd is { } stop ? ScheduleSplit.EndIndex(scheduler, stop, train) : count;
        if (end > begin) return;
        var first = scheduler.Timesteps[Math.Min(begin, count - 1)].ToString(System.Globalization.CultureInfo.InvariantCulture);
        var field = request.DenoisingEnd is not null ? nameof(request.DenoisingEnd) : nameof(request.DenoisingStart);
        var value = request.DenoisingEnd ?? request.DenoisingStart;
        throw new ArgumentOutOfRangeException(field, value,
            $"{field} {value?.ToString(System.Globalization.CultureInfo.InvariantCulture)} leaves no step to run: {name} with {request.Steps} steps has timesteps " +
            $"{scheduler.Timesteps[0].ToString(System.Globalization.CultureInfo.InvariantCulture)} … {scheduler.Timesteps[count - 1].ToString(System.Globalization.CultureInfo.InvariantCulture)}, " +
            $"and the split falls at timestep {ScheduleSplit.Cutoff(value ?? 0, train)}{(begin > 0 ? $" (the run would start at {first})" : "")}; move the fraction or raise Steps.");
    }

    private static string StripParameter(string message) =>
        System.Text.RegularExpressions.Regex.Replace(message, @" \(Parameter '[^']*'\)$|\s*Actual value was [^\n]*$", "", System.Text.RegularExpressions.RegexOptions.Multiline).TrimEnd();

    // The name users know for the config's class (its plain form, e.g. "PNDM"), validating the class on load.
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
        if (!float.IsFinite(r.Guidance) || r.Guidance is < 0 or > MaxGuidance)
            throw new ArgumentOutOfRangeException(nameof(r.GuidanceScale), r.GuidanceScale,
                $"GuidanceScale is {r.Guidance.ToString(System.Globalization.CultureInfo.InvariantCulture)}; it must be a number from 0 to {MaxGuidance} (usually 1–15).");
        if (r.ImageCount is < 1 or > MaxImages)
            throw new ArgumentOutOfRangeException(nameof(r.ImageCount), r.ImageCount, $"ImageCount is {r.ImageCount}; it must be between 1 and {MaxImages}.");
        // A preview step that never comes would silently give no preview; the upper bound (the evaluations the schedule
        // runs) is checked once the schedule is known, in Begin.
        if (r.PreviewSteps is { Count: > 0 } previews && previews.Min() is var early && early < 1)
            throw new ArgumentOutOfRangeException(nameof(r.PreviewSteps), early, $"PreviewSteps contains {early}; steps are counted from 1 (the first evaluation).");
        ImageRequestValidation.Check(r, _folder.VaeEncoderPath, Info.Family.Inpainting);
        SdxlTimeIds.Validate(r, Info.Family.Name, sdxl: _sdxlPromptEncoder is not null, refiner: _sdxlPromptEncoder?.Refiner == true);
        // diffusers runs the refiner as StableDiffusionXLImg2ImgPipeline: it refines an image, it does not draw one.
        if (Info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner && r.InitImage is null && r.InitLatents is null)
            throw new ArgumentException("InitImage is required: an SDXL refiner runs img2img (refining an image; Strength defaults to 0.3 as in diffusers) or continues a base model's latents (InitLatents), not text-to-image.", nameof(r.InitImage));
        if (Info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner && r.MaskImage is not null)
            throw new ArgumentException("MaskImage is not supported with an SDXL refiner yet: LocalDiffusion runs the refiner as img2img only.", nameof(r.MaskImage));
        // With an init image the size defaults to the image's own, rounded down to a size the UNet can draw.
        var multiple = Info.SizeMultiple;
        var width = r.Width ?? (r.InitImage is { } init ? Math.Max(multiple, init.Width / multiple * multiple) : Info.NativeWidth);
        var height = r.Height ?? (r.InitImage is { } image ? Math.Max(multiple, image.Height / multiple * multiple) : Info.NativeHeight);
        CheckSide(nameof(r.Width), width);
        CheckSide(nameof(r.Height), height);
        int latentH = height / VaeDecoder.Factor, latentW = width / VaeDecoder.Factor;
        foreach (var (fixedSize, file) in new[] { (_unet.FixedLatentSize, _folder.UnetPath), (_vae.Decoder.FixedLatentSize, _vae.Decoder.FilePath),
                     (_vae.Float32Fallback?.FixedLatentSize, _vae.Float32Fallback?.FilePath ?? "") })
        {
            if (fixedSize is { } s && (s.Height != latentH || s.Width != latentW))
                throw new ArgumentException(
                    $"{file} has static latent dimensions {s.Height}x{s.Width}, so it only makes {s.Width * 8}x{s.Height * 8} images; {width}x{height} was requested.",
                    width != s.Width * 8 ? nameof(r.Width) : nameof(r.Height));
        }
        if (r.SeedPerImage && (r.InitialLatents is not null || r.InitLatents is not null || r.DenoisingStart is not null || r.DenoisingEnd is not null))
            throw new ArgumentException(
                "SeedPerImage draws each image's noise from its own seed; it cannot be combined with InitialLatents, InitLatents or a base → refiner hand-off (DenoisingStart/DenoisingEnd), which bring or hand over latents for the whole batch.",
                nameof(r.SeedPerImage));
        if (r.InitLatents is { } start && start.Length != r.ImageCount * UNet.LatentChannels * latentH * latentW
            && start.Length != UNet.LatentChannels * latentH * latentW)
            throw new ArgumentException(
                $"InitLatents has {start.Length} values; [{r.ImageCount},{UNet.LatentChannels},{latentH},{latentW}] = {r.ImageCount * UNet.LatentChannels * latentH * latentW} (or one image's {UNet.LatentChannels * latentH * latentW}) are needed for {width}x{height}: set Width and Height to the size the latents were made at.",
                nameof(r.InitLatents));
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
                    ? $" (this model's UNet halves the latents {_unet.DownsamplingLevels} times, so sides must be multiples of 8×{multiple / VaeDecoder.Factor}; e.g. {string.Join(" or ", SizeSuggestions(value, multiple))})."
                    : "."));
    }

    // The allowed sides nearest to value: computed in long (int.MaxValue rounded up overflowed to a negative size) and
    // kept within [multiple, MaxSide], so that every size suggested is one that would be accepted.
    internal static IEnumerable<long> SizeSuggestions(int value, int multiple)
    {
        long largest = MaxSide / multiple * multiple;
        long below = Math.Clamp((long)value / multiple * multiple, multiple, largest);
        long above = Math.Clamp(((long)value / multiple + 1) * multiple, multiple, largest);
        return below == above ? [below] : [below, above];
    }

    /// <summary>Prompt encodings served from <see cref="PipelineOptions.PromptCacheEntries"/>'s cache (for tests).</summary>
    internal long PromptCacheHits => _conditioningCache?.Hits ?? 0;

    /// <summary>The components whose sessions are open now, by folder name (for tests of <see cref="PipelineOptions.LowMemory"/>).</summary>
    internal IReadOnlyList<string> OpenSessions()
    {
        var open = new List<string>();
        if (_family is not null) return [.. _family.Model.Components.Where(c => c.IsLoaded).Select(c => c.Name)];
        if (_textEncoder.IsLoaded) open.Add(_folder.IsRefiner ? "text_encoder_2" : "text_encoder");
        if (_textEncoder2?.IsLoaded == true) open.Add("text_encoder_2");
        if (_unet.IsLoaded) open.Add("unet");
        if (_vae.Decoder.IsLoaded) open.Add("vae_decoder");
        if (_vae.Float32Fallback?.IsLoaded == true) open.Add("vae_decoder_fp32");
        if (_vaeEncoder is { IsValueCreated: true, Value.IsLoaded: true }) open.Add("vae_encoder");
        return open;
    }

    // The prompt encoders' sessions, held while a generation (or a batch of them) encodes its prompts.
    private TextEncoderLeases UseTextEncoders() => new(_textEncoder.Use(), _textEncoder2?.Use());

    private readonly struct TextEncoderLeases(OnnxComponent.Lease first, OnnxComponent.Lease? second) : IDisposable
    {
        public void Dispose()
        {
            second?.Dispose();
            first.Dispose();
        }
    }

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
        if (_family is not null)
        {
            _family.Dispose();
        }
        else
        {
            _textEncoder.Dispose();
            _textEncoder2?.Dispose();
            _unet.Dispose();
            _vae.Dispose();
            if (_vaeEncoder.IsValueCreated) _vaeEncoder.Value?.Dispose();
        }
        _disposing.Dispose();
    }
}
