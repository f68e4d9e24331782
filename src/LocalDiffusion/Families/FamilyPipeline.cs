using LocalDiffusion.Model;
using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.Imaging;
using LocalDiffusion.Latents;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Families;

/// <summary>
/// The family-neutral orchestrator of flow-matching families (SD 3, FLUX): prompt encoding → initial latents → denoising →
/// decoding, each stage delegated to the <see cref="FamilyModel"/>. It knows no family: what to feed the denoiser, how the
/// latents are packed and scaled, and how guidance works are the model's.
/// </summary>
internal sealed class FamilyPipeline(FamilyModel model, SchedulerRegistry schedulers, string modelName) : IDisposable
{
    /// <summary>The opened model.</summary>
    public FamilyModel Model { get; } = model;

    /// <summary>Checks a request (with defaults filled in) before any work; returns its latent size.</summary>
    public (int LatentH, int LatentW) Validate(GenerationRequest r)
    {
        RequestLimits.Check(r);
        if (r.MaxSequenceLength is < 1 or > RequestLimits.MaxSequenceLength)
            throw new InvalidRequestException(nameof(r.MaxSequenceLength), r.MaxSequenceLength, null, called => $"{called} is {r.MaxSequenceLength}; it must be between 1 and {RequestLimits.MaxSequenceLength} T5 tokens.");
        if (r.ControlNets is { Count: > 0 })
            throw new ModelIncompatibleException(nameof(r.ControlNets), Model.Name,
                _ => $"ControlNets are not supported with {Model.Name} (only SD 1.x/2.x and SDXL UNets exported with residual inputs).");
        r = WithStrength(r);
        if (r.DenoisingStart is not null || r.DenoisingEnd is not null)
            throw new ModelIncompatibleException(r.DenoisingStart is not null ? nameof(r.DenoisingStart) : nameof(r.DenoisingEnd), Model.Name,
                called => $"{called}: the SDXL base → refiner hand-off (DenoisingStart/DenoisingEnd) is not supported with {Model.Name}.");
        ImageRequestValidation.Check(r, Model.Encoder?.FilePath, inpaintingUnet: false, (steps, strength) => FlowImageLatents.BeginIndex(steps, strength, 1).StepsLeft);
        // With an init image the size defaults to the image's own, rounded down to a size the transformer can draw.
        var multiple = Model.SizeMultiple;
        var (width, height) = ImageRequestValidation.OutputSize(r, multiple, Model.Defaults.Width, Model.Defaults.Height);
        foreach (var (value, name) in new[] { (width, nameof(r.Width)), (height, nameof(r.Height)) })
            if (value < multiple || value > RequestLimits.MaxSide || value % multiple != 0)
                throw new InvalidRequestException(name, value, null, called => $"{called} is {value}; {Model.Name} draws sides that are multiples of {multiple} px (8 for the VAE × 2 for the transformer's patches), from {multiple} to {RequestLimits.MaxSide}.");
        int latentH = height / VaeDecoder.Factor, latentW = width / VaeDecoder.Factor, item = Model.Latents.Channels * latentH * latentW;
        if (r.InitLatents is { } given && given.Length != item && given.Length != r.ImageCount * item)
            throw new InvalidRequestException(nameof(r.InitLatents), null, null, called => $"{called} has {given.Length} values; [{r.ImageCount},{Model.Latents.Channels},{latentH},{latentW}] = {r.ImageCount * item} (or one image's {item}) are needed for {width}x{height}: set Width and Height to the size the latents were made at.");
        if (r.InitialLatents is not null)
            throw new ModelIncompatibleException(nameof(r.InitialLatents), Model.Name, called => $"{called} are not supported with {Model.Name}: its noise is drawn from Seed.");
        if (r.InitPixels is { } pixels && pixels.Length != 3 * width * height)
            throw new InvalidRequestException(nameof(r.InitImage), null, null, _ => $"InitPixels has {pixels.Length} values; 3×{height}×{width} are needed.");
        _ = CreateScheduler(r);
        return (latentH, latentW);
    }

    /// <summary>The request with diffusers' img2img/inpainting strength filled in when it starts from an image or latents.</summary>
    public static GenerationRequest WithStrength(GenerationRequest r) =>
        r.Strength is null && (r.InitImage is not null || r.InitLatents is not null) ? r with { Strength = FlowImageLatents.DefaultStrength } : r;

    /// <summary>Runs a validated request on the calling thread.</summary>
    public GenerationResult Generate(GenerationRequest request, IProgress<GenerationProgress>? progress, CancellationToken token)
    {
        var clock = Stopwatch.StartNew();
        request = WithStrength(request);
        var (latentH, latentW) = Validate(request);
        var (scheduler, schedulerName) = CreateScheduler(request);
        Model.SetTimesteps(scheduler, request.StepCount, latentH, latentW);
        var fromImage = request.InitImage is not null || request.InitLatents is not null;
        var begin = fromImage ? FlowImageLatents.BeginIndex(request.StepCount, request.EffectiveStrength, scheduler.Order).BeginIndex : 0;
        scheduler.SetBeginIndex(begin);
        if (request.PreviewSteps is { Count: > 0 } previewSteps && previewSteps.Max() is var lastPreview && lastPreview > scheduler.Timesteps.Count - begin)
            throw new InvalidRequestException(nameof(request.PreviewSteps), lastPreview, null, called => $"{called} contains {lastPreview}; this generation runs {scheduler.Timesteps.Count - begin} denoising evaluations, so preview steps must be between 1 and {scheduler.Timesteps.Count - begin}.");
        var n = request.ImageCount;
        var guidance = request.Guidance;
        var cfg = Model.Guidance == GuidanceMode.ClassifierFree && guidance > 1f;
        var seed = request.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue);
        var generator = new TorchGenerator(seed);
        var warnings = new List<string>();
        if (ImageRequestValidation.ResizeNote(request, latentW * VaeDecoder.Factor, latentH * VaeDecoder.Factor) is { } resized) warnings.Add(resized);
        if (!cfg && request.NegativePrompt.Length > 0)
            warnings.Add(Model.Guidance == GuidanceMode.ClassifierFree
                ? "The negative prompt was not used: guidance at or below 1 runs no unconditional pass."
                : $"The negative prompt was not used: {Model.Name} has no unconditional pass ({(Model.Guidance == GuidanceMode.Embedded ? "its guidance is an input of the transformer" : "it runs unguided")}).");
        using var runOptions = new RunOptions();
        using var terminate = token.Register(() => runOptions.Terminate = true);

        // Prompt encoding: [negative, prompt] with CFG (diffusers' order), each repeated for the n images.
        progress?.Report(new GenerationProgress(0, 0, clock.Elapsed) { Phase = GenerationPhase.Encoding });
        FamilyConditioning encoded;
        using (LocalDiffusionTelemetry.StartStage("localdiffusion.encode_prompt"))
            encoded = Model.Encode(cfg ? [request.NegativePrompt, request.Prompt] : [request.Prompt],
                request.MaxSequenceLength ?? Model.Defaults.MaxSequenceLength, runOptions);
        if (!TensorPrimitives.IsFiniteAll<float>(encoded.Hidden) || !TensorPrimitives.IsFiniteAll<float>(encoded.Pooled))
            throw new GenerationNumericsException(NumericsStage.Conditioning, null, $"the text encoders of {Model.Name} returned NaN/infinity for the prompt.");
        var conditioning = Repeat(encoded, n);

        // Initial latents: torch.randn((n, C, h, w), generator), unscaled (flow matching starts from unit noise); from an
        // image, its latents noised to the begin index, and the inpainting blend when masked.
        var item = Model.Latents.Channels * latentH * latentW;
        float[] latents;
        InpaintBlend? blend = null;
        if (fromImage)
        {
            var pixels = request.InitPixels ?? request.InitImage?.Resize(latentW * VaeDecoder.Factor, latentH * VaeDecoder.Factor).ToChw();
            var prepared = FlowImageLatents.Prepare(request, Model, scheduler, begin, pixels, generator, n, latentH, latentW, runOptions);
            (latents, blend) = (prepared.Latents, prepared.Blend);
        }
        else
        {
            latents = new float[n * item];
            generator.FillNormal(latents);
        }

        var rows = cfg ? 2 * n : n;
        var input = cfg ? new float[rows * item] : latents;
        var prediction = new float[rows * item];
        var guided = cfg ? new float[n * item] : prediction;
        var timesteps = scheduler.Timesteps;
        var evaluations = 0;
        var total = timesteps.Count - begin;
        var denoise = LocalDiffusionTelemetry.StartStage("localdiffusion.denoise");
        try
        {
            for (var i = begin; i < timesteps.Count; i++)
            {
                token.ThrowIfCancellationRequested();
                if (request.FinishEarly.IsCancellationRequested)
                {
                    warnings.Add($"Stopped early on request after {evaluations} of {total} denoising evaluations: the picture is partly denoised.");
                    break;
                }
                if (cfg)
                {
                    latents.CopyTo(input, 0);
                    latents.CopyTo(input, n * item);
                }
                Model.Predict(input, rows, latentH, latentW, timesteps[i], guidance, conditioning, prediction, runOptions);
                if (!TensorPrimitives.IsFiniteAll<float>(prediction))
                    throw new GenerationNumericsException(NumericsStage.Unet, i + 1, $"NaN/infinity at denoising step {i + 1} of {timesteps.Count}: the {Model.Name} transformer returned NaN/infinity from finite inputs.");
                if (cfg)
                {
                    ReadOnlySpan<float> uncond = prediction.AsSpan(0, n * item), text = prediction.AsSpan(n * item, n * item);
                    TensorPrimitives.Subtract(text, uncond, guided);
                    TensorPrimitives.MultiplyAdd(guided, guidance, uncond, guided);
                }
                scheduler.Step(guided, i, latents, generator);
                blend?.AfterStep(i, latents);
                if (!TensorPrimitives.IsFiniteAll<float>(latents))
                    throw new GenerationNumericsException(NumericsStage.Scheduler, i + 1, $"NaN/infinity at denoising step {i + 1} of {timesteps.Count}: the {schedulerName} scheduler's step was not finite.");
                evaluations++;
                LocalDiffusionTelemetry.Step(denoise, evaluations, total);
                progress?.Report(new GenerationProgress(evaluations, total, clock.Elapsed)
                {
                    EvaluationsPerStep = scheduler.Order,
                    Preview = request.PreviewSteps?.Contains(evaluations) == true ? DecodePreview(latents, n, latentH, latentW, runOptions) : null,
                });
            }
        }
        finally
        {
            denoise?.Dispose();
        }
        progress?.Report(new GenerationProgress(evaluations, evaluations, clock.Elapsed) { Phase = GenerationPhase.Decoding, EvaluationsPerStep = scheduler.Order });
        using var decoding = LocalDiffusionTelemetry.StartStage("localdiffusion.decode");
        var images = Decode(latents, request, n, latentH, latentW, cfg, schedulerName, seed, runOptions, token);
        progress?.Report(new GenerationProgress(evaluations, evaluations, clock.Elapsed) { Phase = GenerationPhase.Done, EvaluationsPerStep = scheduler.Order });
        return new GenerationResult(images, seed, latents, [n, Model.Latents.Channels, latentH, latentW], clock.Elapsed)
        {
            Warnings = warnings,
            UnetEvaluations = evaluations,
            UnetCalls = evaluations,
            Scheduler = schedulerName,
            Seeds = [.. Enumerable.Repeat(seed, n)],
        };
    }

    // diffusers: x = latents / scaling_factor + shift_factor, then the VAE; pixels clamp(x/2 + 0.5).
    private List<GeneratedImage> Decode(float[] latents, GenerationRequest request, int n, int latentH, int latentW, bool usedNegative,
        string schedulerName, long seed, RunOptions runOptions, CancellationToken token)
    {
        var item = Model.Latents.Channels * latentH * latentW;
        var scaled = new float[item];
        int width = latentW * VaeDecoder.Factor, height = latentH * VaeDecoder.Factor;
        var images = new List<GeneratedImage>(n);
        // Inpainting: the kept pixels are pasted back from the init image, as the SD path does (InpaintComposite).
        var original = request.MaskImage is null ? null : request.InitImage!.Resize(width, height);
        var pixelMask = request.MaskImage is { } mask ? InpaintMask.ToPixels(mask.Resize(width, height), request.MaskBlur) : null;
        using var vae = Model.Decoder.Use();
        var (scaling, shift) = Model.Decoder.LatentScale(Model.Latents.ScalingFactor, Model.Latents.ShiftFactor); // a TAESD3/TAEF1: none
        for (var i = 0; i < n; i++)
        {
            token.ThrowIfCancellationRequested();
            TensorPrimitives.Divide(latents.AsSpan(i * item, item), scaling, scaled);
            TensorPrimitives.Add(scaled, shift, scaled);
            var pixels = Model.Decoder.Decode(scaled, latentH, latentW, runOptions);
            if (!TensorPrimitives.IsFiniteAll<float>(pixels))
                throw new GenerationNumericsException(NumericsStage.VaeDecoder, null, $"the VAE decoder ({Model.Decoder.FilePath}) returned NaN/infinity.");
            var rgb = ImageConversion.ToRgb8(pixels, width, height, Model.Decoder.FilePath);
            if (original is not null) InpaintComposite.Apply(rgb, original, pixelMask!);
            images.Add(new GeneratedImage(width, height, rgb,
                GenerationParameters.Format(request, usedNegative, schedulerName, seed, width, height, modelName, i, n)));
        }
        return images;
    }

    // A live preview of the current latents: flow-matching latents stay near unit variance ((1 − σ)·x0 + σ·noise), so they
    // are decoded as they are, by the preview decoder (a TAESD, when there is one) with its own scaling.
    private GeneratedImage[] DecodePreview(float[] latents, int n, int latentH, int latentW, RunOptions runOptions)
    {
        var decoder = Model.PreviewDecoder ?? Model.Decoder;
        var (scaling, shift) = decoder.LatentScale(Model.Latents.ScalingFactor, Model.Latents.ShiftFactor);
        var item = Model.Latents.Channels * latentH * latentW;
        var scaled = new float[item];
        int width = latentW * VaeDecoder.Factor, height = latentH * VaeDecoder.Factor;
        var previews = new GeneratedImage[n];
        using var lease = decoder.Use();
        for (var i = 0; i < n; i++)
        {
            TensorPrimitives.Divide(latents.AsSpan(i * item, item), scaling, scaled);
            TensorPrimitives.Add(scaled, shift, scaled);
            previews[i] = new GeneratedImage(width, height, ImageConversion.ToRgb8(decoder.Decode(scaled, latentH, latentW, runOptions), width, height, decoder.FilePath));
        }
        return previews;
    }

    // A flow-matching scheduler: the folder's, or one asked for by name; any other kind cannot follow a velocity field.
    private (IFlowMatchScheduler Scheduler, string Name) CreateScheduler(GenerationRequest request)
    {
        var scheduler = request.Scheduler is null
            ? schedulers.CreateFromConfig(Model.SchedulerConfig)
            : schedulers.Create(request.Scheduler, Model.SchedulerConfig);
        var name = request.Scheduler is null ? Model.SchedulerConfig.ClassName ?? "flow" : schedulers.Describe(request.Scheduler).DisplayName;
        return scheduler is IFlowMatchScheduler flow ? (flow, name)
            : throw new ModelIncompatibleException(nameof(request.Scheduler), Model.Name, called => $"{called} '{request.Scheduler ?? Model.SchedulerConfig.ClassName}' is not a flow-matching scheduler; {Model.Name} predicts a velocity and runs flow_euler or flow_heun.");
    }

    // diffusers repeats each prompt's rows num_images_per_prompt times: [neg×n, pos×n].
    private static FamilyConditioning Repeat(FamilyConditioning c, int n)
    {
        if (n == 1) return c;
        int hiddenRow = c.SequenceLength * c.Width, pooledRow = c.PooledWidth;
        var hidden = new float[c.Rows * n * hiddenRow];
        var pooled = new float[c.Rows * n * pooledRow];
        for (var r = 0; r < c.Rows; r++)
            for (var k = 0; k < n; k++)
            {
                c.Hidden.AsSpan(r * hiddenRow, hiddenRow).CopyTo(hidden.AsSpan((r * n + k) * hiddenRow));
                c.Pooled.AsSpan(r * pooledRow, pooledRow).CopyTo(pooled.AsSpan((r * n + k) * pooledRow));
            }
        return c with { Hidden = hidden, Pooled = pooled, Rows = c.Rows * n };
    }

    public void Dispose() => Model.Dispose();
}
