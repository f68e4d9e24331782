using LocalDiffusion.Decoding;
using LocalDiffusion.Denoising;
using LocalDiffusion.Errors;
using LocalDiffusion.Families;
using LocalDiffusion.Imaging;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;
using System.Diagnostics;
using System.Numerics.Tensors;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// The stages of a generation, family-neutral, in order: prompt encoding (the family's conditioner, through the
/// conditioning cache) → initial latents (the family's latent format) → denoising (one loop over any number of compatible
/// runs, through the family's denoiser) → decoding (the family's VAE), with live previews between steps — decoded by a
/// TAESD when one is at hand (PipelineOptions.PreviewDecoderPath, or the model folder's taesd/), as AUTOMATIC1111's
/// "TAESD" live preview does, else by the VAE the pictures use.
/// </summary>
internal sealed class GenerationStages(FamilyModel model, RunPreparation preparation, LoraSwitch loras, ControlNetSet controlNets,
    ConditioningCache? conditioningCache, CancellationToken disposing)
{
    private ModelInfo Info => model.Info;

    // Runs a prepared request; a refiner continues the base's generator (as diffusers does when one generator is passed
    // to both pipelines), and a base handing over skips decoding.
    public (GenerationResult Result, TorchGenerator? Generator) Generate(RunPreparation.PreparedRun run, IProgress<GenerationProgress>? progress,
        TorchGenerator? continued, bool decode, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        cancellationToken.ThrowIfCancellationRequested();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, disposing);
        var token = linked.Token;
        using var runOptions = new RunOptions();
        // Interrupts a long Run (a big UNet or VAE call) instead of waiting for it to finish.
        using var terminate = token.Register(() => runOptions.Terminate = true);
        using var activity = LocalDiffusionTelemetry.StartGenerate(Info, run.Request, run.LatentW * VaeDecoder.Factor, run.LatentH * VaeDecoder.Factor);
        try
        {
            using var lease = loras.Use(run.Request);
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

    // AUTOMATIC1111's batch: image i is the one-image request for seed + i (its own generator and scheduler), denoised in
    // the same denoiser calls where that changes nothing; the request's progress follows the first image, decoded last.
    private GenerationResult GeneratePerImageSeeds(GenerationRequest request, int latentH, int latentW, IProgress<GenerationProgress>? progress,
        RunOptions runOptions, Stopwatch clock, CancellationToken token)
    {
        var seed = request.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue);
        var runs = new List<GenerationRun>(request.ImageCount);
        for (var i = 0; i < request.ImageCount; i++)
        {
            var single = request with { ImageCount = 1, Seed = seed + i, SeedPerImage = false };
            runs.Add(Begin(single, preparation.CreateScheduler(single, latentH, latentW), latentH, latentW, i == 0 ? progress : null, runOptions, clock, null, token));
        }
        // Denoised in the same calls where the denoiser gives each row what it gives alone (FLUX's does not, to the last bits).
        if (model.BatchesExactly) Denoise(runs, runOptions);
        else foreach (var run in runs) Denoise([run], runOptions);
        foreach (var run in runs) run.Member!.ThrowIfFailed();
        var results = new GenerationResult[runs.Count];
        using (model.Decoding.Use())
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
    public GenerationRun Begin(GenerationRequest request, (IScheduler Scheduler, string Name) scheduler, int latentH, int latentW,
        IProgress<GenerationProgress>? progress, RunOptions runOptions, Stopwatch clock, TorchGenerator? continued, CancellationToken token)
    {
        var n = request.ImageCount;
        var useCfg = Info.Family.UsesClassifierFreeGuidance(request.Guidance);
        var warnings = new List<string>(loras.Notes);
        if (model.PromptNote(request, useCfg) is { } note) warnings.Add(note);
        if (ImageRequestValidation.ResizeNote(request, latentW * VaeDecoder.Factor, latentH * VaeDecoder.Factor) is { } resized) warnings.Add(resized);
        var timings = new TimingRecorder();
        progress?.Report(new GenerationProgress(0, 0, clock.Elapsed) { Phase = GenerationPhase.Encoding });

        // Text conditioning: [negative×n, prompt×n] with CFG (diffusers' order), else [prompt×n].
        var prompts = useCfg ? new[] { request.NegativePrompt, request.Prompt } : [request.Prompt];
        UNetInputs Encode(List<string> into)
        {
            using (model.UseConditioner())
                return model.Encode(prompts, n, request, latentH, latentW, into, timings, runOptions);
        }
        UNetInputs inputs;
        using (LocalDiffusionTelemetry.StartStage("localdiffusion.encode_prompt"))
            inputs = conditioningCache is { } cache
                ? cache.GetOrEncode(ConditioningCache.Key(prompts, n, request.PromptWeighting, null,
                    loras.Identity(request) + "\u0002" + model.ConditioningKey(request, prompts.Length, latentH, latentW)), warnings, Encode)
                : Encode(warnings);
        inputs = model.WithGuidance(inputs, request.Guidance);
        timings.TextEncoderDone();

        var seed = request.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue);
        var generator = continued ?? new TorchGenerator(seed);
        var start = model.PrepareLatents(request, scheduler.Scheduler, generator, n, latentH, latentW, runOptions);
        var end = request.DenoisingEnd is { } fraction
            ? ScheduleSplit.EndIndex(scheduler.Scheduler, fraction, model.TrainTimesteps)
            : scheduler.Scheduler.Timesteps.Count;
        var evaluations = end - start.BeginIndex;
        if (request.PreviewSteps is { Count: > 0 } previews && previews.Max() is var last && last > evaluations)
            throw new InvalidRequestException(nameof(request.PreviewSteps), last, null, called => $"{called} contains {last}; this generation runs {evaluations} denoising evaluations, so preview steps must be between 1 and {evaluations}.");
        // The previews' own decoder opens with the first request that asks for previews, before its work starts, so a
        // graph it refuses is reported now and not between steps.
        if (request.PreviewSteps is { Count: > 0 }) model.Preview?.Open();
        return new GenerationRun
        {
            Request = request, Scheduler = scheduler, LatentH = latentH, LatentW = latentW, Progress = progress, RunOptions = runOptions,
            Clock = clock, Token = token, UseCfg = useCfg, Warnings = warnings, Timings = timings,
            Inputs = inputs with { ExtraChannels = start.Channels }, Seed = seed, Generator = generator, Start = start, End = end,
        };
    }

    // Denoising: one UNet call per step over the rows of every run (one run, or a compatible batch: same size, timesteps,
    // begin and end index, CFG decision and conditioning shape). A run that fails or is cancelled leaves with its Member.Error set.
    public void Denoise(IReadOnlyList<GenerationRun> runs, RunOptions unetRunOptions, Action<GenerationRun>? onRetired = null)
    {
        var first = runs[0];
        // The denoiser's session is held over the loop (its I/O bindings live in the conditioning, disposed first), and the
        // VAE's too when previews decode between steps.
        var denoiser = model.Denoiser;
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
                        Preview = WantsPreview(request, step) ? DecodePreview(latents, n, run.LatentH, run.LatentW, run.RunOptions) : null,
                    });
                },
            };
            members.Add(run.Member);
        }
        using var control = controlNets.Prepare(runs, conditioning);
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
    public GenerationResult Finish(GenerationRun run, bool decode)
    {
        var (request, n, latentH, latentW, latents, clock, timings) = (run.Request, run.Request.ImageCount, run.LatentH, run.LatentW, run.Start.Latents, run.Clock, run.Timings);
        var evaluations = run.Member!.Evaluations;
        if (run.Member.StoppedEarly)
            run.Warnings.Add($"Stopped early on request after {evaluations} of {run.End - run.Start.BeginIndex} denoising evaluations: the picture is partly denoised.");
        run.Progress?.Report(new GenerationProgress(evaluations, evaluations, clock.Elapsed) { Phase = GenerationPhase.Decoding, EvaluationsPerStep = run.Scheduler.Scheduler.Order });
        var modelName = Path.GetFileName(Info.Root.TrimEnd(Path.DirectorySeparatorChar));
        using var vae = decode ? model.Decoding.Use() : (OnnxComponent.Lease?)null;
        using var decoding = decode ? LocalDiffusionTelemetry.StartStage("localdiffusion.decode") : null;
        var images = !decode ? [] : LatentDecoding.Decode(latents, n, latentH, latentW, request, model.Decoding, model.Latents,
            i => GenerationParameters.Format(request, run.UseCfg, run.Scheduler.Name, run.Seed, latentW * VaeDecoder.Factor, latentH * VaeDecoder.Factor, modelName, i, n),
            run.Warnings, run.RunOptions, run.Token);
        timings.DecodeDone();
        run.Progress?.Report(new GenerationProgress(evaluations, evaluations, clock.Elapsed) { Phase = GenerationPhase.Done, EvaluationsPerStep = run.Scheduler.Scheduler.Order });
        return new GenerationResult(images, run.Seed, latents, [n, model.Latents.Channels, latentH, latentW], clock.Elapsed)
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

    private static bool WantsPreview(GenerationRequest request, int step) =>
        request.PreviewSteps is { Count: > 0 } steps && steps.Contains(step);

    // The preview decoder's session, held over a denoising loop that decodes previews between its steps.
    private OnnxComponent.Lease UsePreviewDecoder() => model.Preview is { } preview ? preview.Open().Use() : model.Decoding.Use();

    /// <summary>
    /// Decodes each image's current latents. Sigma-parameterised schedulers (Euler, Heun, …) carry latents with a
    /// standard deviation of about √(σ² + 1), far from the unit-variance latents the VAE expects, so latents whose
    /// RMS exceeds 1 are divided by it first: the same normalisation the schedulers' scale_model_input applies.
    /// A TAESD takes the latents so normalised; the full VAE takes them divided by the scaling factor too.
    /// </summary>
    private GeneratedImage[] DecodePreview(float[] latents, int images, int latentH, int latentW, RunOptions runOptions)
    {
        var item = latents.Length / images;
        var scaled = new float[item];
        var previews = new GeneratedImage[images];
        var own = model.Preview?.Open();
        var (scale, shift) = (own ?? model.Decoding.Decoder).LatentScale(model.Latents.ScalingFactor, model.Latents.ShiftFactor);
        for (var i = 0; i < images; i++)
        {
            var current = latents.AsSpan(i * item, item);
            var rms = model.PreviewsNormaliseNoise ? MathF.Sqrt(TensorPrimitives.SumOfSquares(current) / item) : 1f;
            var normaliser = rms > 1f && float.IsFinite(rms) ? rms : 1f;
            TensorPrimitives.Divide(current, normaliser * scale, scaled);
            if (shift != 0f) TensorPrimitives.Add(scaled, shift, scaled);
            var (chw, source) = own is { } preview
                ? (preview.Decode(scaled, latentH, latentW, runOptions), preview.FilePath)
                : DecodeWithPicturesVae(scaled, latentH, latentW, runOptions);
            int width = latentW * VaeDecoder.Factor, height = latentH * VaeDecoder.Factor;
            previews[i] = new GeneratedImage(width, height, ImageConversion.ToRgb8(chw, width, height, source));
        }
        return previews;
    }

    private (float[] Pixels, string Source) DecodeWithPicturesVae(float[] scaled, int latentH, int latentW, RunOptions runOptions)
    {
        var (chw, source, _) = model.Decoding.Decode(scaled, latentH, latentW, runOptions);
        return (chw, source);
    }
}
