using LocalDiffusion.Families;
using System.Diagnostics;
using LocalDiffusion.Decoding;
using LocalDiffusion.Denoising;
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
using LocalDiffusion.Errors;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// Text-to-image, img2img and inpainting with any model family (<see cref="FamilyRegistry"/>: SD 1.x/2.x/XL and their
/// variants, SD 3, FLUX.1), in stages: prompt encoding → initial latents → denoising → decoding. This class is the
/// family-neutral orchestrator: what the stages feed the denoiser, how latents are made and scaled, and what a request
/// may ask of the model are the <see cref="FamilyModel"/>'s, decided once at load.
/// Sessions are created once and reused. <see cref="GenerateAsync"/> may be called from several threads at once:
/// each generation has its own scheduler, generator and buffers, and ONNX Runtime sessions run concurrently.
/// </summary>
public sealed partial class StableDiffusionPipeline : IDisposable
{
    private const int MaxSide = RequestLimits.MaxSide;

    private readonly FamilyModel _model;
    private readonly SchedulerRegistry _schedulers;
    private readonly PipelineOptions _options;
    private readonly SessionFactory _sessions;
    private readonly ConditioningCache? _conditioningCache;
    private readonly CancellationTokenSource _disposing = new();
    private readonly object _gate = new();
    private int _active;
    [ThreadStatic] private static int _generationsOnThisThread;
    private bool _disposed;

    private StableDiffusionPipeline(FamilyModel model, SessionFactory sessions, PipelineOptions options)
    {
        _model = model;
        _sessions = sessions;
        _options = options;
        _schedulers = options.Schedulers ?? SchedulerRegistry.Default;
        _conditioningCache = options.PromptCacheEntries > 0 ? new ConditioningCache(options.PromptCacheEntries) : null;
    }

    private int TrainTimesteps => _model.TrainTimesteps;

    /// <summary>What was detected: components, dtypes, shapes, scheduler, provider, native size.</summary>
    public ModelInfo Info => _model.Info;

    /// <summary>
    /// Generates images. Cancelling stops between UNet evaluations and interrupts a running ONNX Runtime call.
    /// Bad requests throw <see cref="ArgumentException"/> naming the field before any work is done.
    /// </summary>
    public Task<GenerationResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
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
    /// The request with what it leaves unset taken from this model's family (<see cref="ModelFamily.DefaultSteps"/>,
    /// <see cref="ModelFamily.DefaultGuidanceScale"/>): Turbo's one unguided step, LCM's 4 steps at 8.5, SD's 20 at 7.5,
    /// FLUX.1-schnell's 4 unguided steps. What a generation of <paramref name="request"/> runs; front-ends use it to
    /// report the values.
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
        CheckLorasTaken(request);
        request = _model.WithFamilyDefaults(ResolveLoras(WithDefaults(request)));
        var (latentH, latentW) = Validate(request);
        _model.CheckLoras(request.Loras ?? [], _options.SkipUnmatchedLoraLayers);
        var scheduler = CreateScheduler(request, latentH, latentW);
        if (_model.SplitsSchedules) CheckSplit(request, scheduler.Scheduler, scheduler.Name);
        if (request.InitImage is not null)
            _ = _model.OpenEncoder(); // a broken vae_encoder is reported before any work
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
            runs.Add(Begin(single, CreateScheduler(single, latentH, latentW), latentH, latentW, i == 0 ? progress : null, runOptions, clock, null, token));
        }
        Denoise(runs, runOptions);
        foreach (var run in runs) run.Member!.ThrowIfFailed();
        var results = new GenerationResult[runs.Count];
        using (_model.Decoding.Use())
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
        if (_model.PromptNote(request, useCfg) is { } note) warnings.Add(note);
        if (ImageRequestValidation.ResizeNote(request, latentW * VaeDecoder.Factor, latentH * VaeDecoder.Factor) is { } resized) warnings.Add(resized);
        var timings = new TimingRecorder();
        progress?.Report(new GenerationProgress(0, 0, clock.Elapsed) { Phase = GenerationPhase.Encoding });

        // Text conditioning: [negative×n, prompt×n] with CFG (diffusers' order), else [prompt×n].
        var prompts = useCfg ? new[] { request.NegativePrompt, request.Prompt } : [request.Prompt];
        UNetInputs Encode(List<string> into)
        {
            using (_model.UseConditioner())
                return _model.Encode(prompts, n, request, latentH, latentW, into, timings, runOptions);
        }
        UNetInputs inputs;
        using (LocalDiffusionTelemetry.StartStage("localdiffusion.encode_prompt"))
            inputs = _conditioningCache is { } cache
                ? cache.GetOrEncode(ConditioningCache.Key(prompts, n, request.PromptWeighting, null,
                    LoraIdentity(request) + "\u0002" + _model.ConditioningKey(request, prompts.Length, latentH, latentW)), warnings, Encode)
                : Encode(warnings);
        inputs = _model.WithGuidance(inputs, request.Guidance);
        timings.TextEncoderDone();

        var seed = request.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue);
        var generator = continued ?? new TorchGenerator(seed);
        var start = _model.PrepareLatents(request, scheduler.Scheduler, generator, n, latentH, latentW, runOptions);
        var end = request.DenoisingEnd is { } fraction
            ? ScheduleSplit.EndIndex(scheduler.Scheduler, fraction, TrainTimesteps)
            : scheduler.Scheduler.Timesteps.Count;
        var evaluations = end - start.BeginIndex;
        if (request.PreviewSteps is { Count: > 0 } previews && previews.Max() is var last && last > evaluations)
            throw new InvalidRequestException(nameof(request.PreviewSteps), last, null, called => $"{called} contains {last}; this generation runs {evaluations} denoising evaluations, so preview steps must be between 1 and {evaluations}.");
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
        // The denoiser's session is held over the loop (its I/O bindings live in the conditioning, disposed first), and the
        // VAE's too when previews decode between steps.
        var denoiser = _model.Denoiser;
        using var unet = denoiser.Use();
        using var previews = runs.Any(r => r.Request.PreviewSteps is { Count: > 0 }) ? UsePreviewDecoder() : (OnnxComponent.Lease?)null;
        using var conditioning = denoiser.Prepare(UNetInputs.Concat(runs.Select(r => r.Inputs).ToList()));
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
        using var control = PrepareControl(runs, conditioning); // StableDiffusionPipeline.ControlNets.cs
        var loop = new DenoisingLoop(denoiser, members, first.UseCfg, first.Start.BeginIndex, first.End) { Control = control };
        try
        {
            loop.Run(first.LatentH, first.LatentW, conditioning, unetRunOptions);
        }
        finally
        {
            foreach (var run in runs)
            {
                run.UnetCalls = run.Member!.Evaluations * conditioning.CallsPerEvaluation;
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
        var modelName = Path.GetFileName(Info.Root.TrimEnd(Path.DirectorySeparatorChar));
        using var vae = decode ? _model.Decoding.Use() : (OnnxComponent.Lease?)null;
        using var decoding = decode ? LocalDiffusionTelemetry.StartStage("localdiffusion.decode") : null;
        var images = !decode ? [] : LatentDecoding.Decode(latents, n, latentH, latentW, request, _model.Decoding, _model.Latents,
            i => GenerationParameters.Format(request, run.UseCfg, run.Scheduler.Name, run.Seed, latentW * VaeDecoder.Factor, latentH * VaeDecoder.Factor, modelName, i, n),
            run.Warnings, run.RunOptions, run.Token);
        timings.DecodeDone();
        run.Progress?.Report(new GenerationProgress(evaluations, evaluations, clock.Elapsed) { Phase = GenerationPhase.Done, EvaluationsPerStep = run.Scheduler.Scheduler.Order });
        return new GenerationResult(images, run.Seed, latents, [n, _model.Latents.Channels, latentH, latentW], clock.Elapsed)
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

    /// <summary>Prompt encodings served from <see cref="PipelineOptions.PromptCacheEntries"/>'s cache (for tests).</summary>
    internal long PromptCacheHits => _conditioningCache?.Hits ?? 0;

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
        DisposeControlNets();
        _model.Dispose();
        _disposing.Dispose();
    }
}
