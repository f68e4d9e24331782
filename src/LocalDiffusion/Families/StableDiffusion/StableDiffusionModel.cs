using LocalDiffusion.Denoising;
using LocalDiffusion.Embeddings;
using LocalDiffusion.Errors;
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

namespace LocalDiffusion.Families.StableDiffusion;

/// <summary>
/// An opened UNet model — SD 1.x/2.x, SDXL base or refiner, and their LCM, Turbo, v-prediction and inpainting variants
/// (<see cref="ModelFamily"/> says which): CLIP conditioning with A1111's weighting and long prompts, SDXL's second
/// encoder and time ids, the UNet (ControlNet residuals, LoRA and textual-inversion targets), the 4-channel VAE.
/// </summary>
internal sealed partial class StableDiffusionModel : FamilyModel
{
    private readonly ModelFolder _folder;
    private readonly ClipTextEncoder _textEncoder;
    private readonly PromptEncoder _promptEncoder;
    private readonly ClipTextEncoder? _textEncoder2;
    private readonly SdxlPromptEncoder? _sdxlPromptEncoder;
    private readonly UNet _unet;
    private readonly VaeDecoding _vae;
    private readonly DeferredDecoder? _previewDecoder;
    private readonly Lazy<VaeEncoder?> _vaeEncoder;
    private EmbeddingSet? _embeddings;

    public StableDiffusionModel(ModelFolder folder, ClipTokenizer tokenizer, ClipTextEncoder textEncoder, UNet unet, VaeDecoding vae,
        DeferredDecoder? previewDecoder, Lazy<VaeEncoder?> vaeEncoder, (ClipTokenizer Tokenizer, ClipTextEncoder Encoder)? second, ModelInfo info)
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
            // The refiner's only encoder is text_encoder_2, loaded as the model's text encoder.
            _sdxlPromptEncoder = new SdxlPromptEncoder(null, null, tokenizer, textEncoder, folder.TextEncoderPath, folder.ForceZerosForEmptyPrompt, dynamicSequence);
        }
        _folder = folder;
        _textEncoder = textEncoder;
        _promptEncoder = new PromptEncoder(tokenizer, textEncoder, folder.TextEncoderPath, dynamicSequence);
        _unet = unet;
        _vae = vae;
        _previewDecoder = previewDecoder;
        _vaeEncoder = vaeEncoder;
        Info = info;
    }

    private bool IsRefiner => Info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner;

    /// <inheritdoc/>
    public override IDenoiser Denoiser => _unet;

    /// <inheritdoc/>
    public override string SizeMultipleReason =>
        $"this model's UNet halves the latents {_unet.DownsamplingLevels} times, so sides must be multiples of 8×{Info.SizeMultiple / VaeDecoder.Factor}";

    /// <inheritdoc/>
    public override VaeDecoding Decoding => _vae;

    /// <inheritdoc/>
    public override DeferredDecoder? Preview => _previewDecoder;

    /// <inheritdoc/>
    public override string? EncoderPath => _folder.VaeEncoderPath;

    /// <inheritdoc/>
    public override VaeEncoder? OpenEncoder() => _vaeEncoder.Value;

    /// <inheritdoc/>
    public override IReadOnlyList<OnnxComponent> LoraTargets =>
        _textEncoder2 is null ? [_unet.Component, _textEncoder.Component] : [_unet.Component, _textEncoder.Component, _textEncoder2.Component];

    /// <inheritdoc/>
    public override UNet? ControlTarget => _unet;

    /// <inheritdoc/>
    public override bool SplitsSchedules => true;

    /// <inheritdoc/>
    public override bool PreviewsNormaliseNoise => true;

    /// <inheritdoc/>
    public override EmbeddingSet? Embeddings => _embeddings;

    /// <inheritdoc/>
    public override IEnumerable<OnnxComponent> Sessions
    {
        get
        {
            yield return _textEncoder.Component;
            if (_textEncoder2 is not null) yield return _textEncoder2.Component;
            yield return _unet.Component;
            yield return _vae.Decoder.Component;
            if (_vae.Float32Fallback is { } fallback) yield return fallback.Component;
            if (_previewDecoder?.Component is { } preview) yield return preview;
            if (_vaeEncoder is { IsValueCreated: true, Value: { } encoder }) yield return encoder.Component;
        }
    }

    /// <inheritdoc/>
    public override GenerationRequest WithFamilyDefaults(GenerationRequest request) =>
        // StableDiffusionXLImg2ImgPipeline's strength default: the refiner only polishes the last steps.
        IsRefiner && request.Strength is null && request.InitImage is not null ? request with { Strength = 0.3f } : request;

    /// <inheritdoc/>
    public override void Validate(GenerationRequest r)
    {
        if (r.PromptWeighting)
        {
            PromptEncoder.Validate(r.Prompt, nameof(r.Prompt));
            PromptEncoder.Validate(r.NegativePrompt, nameof(r.NegativePrompt));
        }
        SdxlTimeIds.Validate(r, Info.Family.Name, sdxl: _sdxlPromptEncoder is not null, refiner: _sdxlPromptEncoder?.Refiner == true);
        // diffusers runs the refiner as StableDiffusionXLImg2ImgPipeline: it refines an image, it does not draw one.
        if (IsRefiner && r.InitImage is null && r.InitLatents is null)
            throw new ModelIncompatibleException(nameof(r.InitImage), Info.Root, called => $"{called} is required: an SDXL refiner runs img2img (refining an image; Strength defaults to 0.3 as in diffusers) or continues a base model's latents (InitLatents), not text-to-image.");
        if (IsRefiner && r.MaskImage is not null)
            throw new ModelIncompatibleException(nameof(r.MaskImage), Info.Root, called => $"{called} is not supported with an SDXL refiner yet: LocalDiffusion runs the refiner as img2img only.");
    }

    /// <inheritdoc/>
    public override void CheckSize(GenerationRequest r, int width, int height)
    {
        int latentH = height / VaeDecoder.Factor, latentW = width / VaeDecoder.Factor;
        foreach (var (fixedSize, file) in new[] { (_unet.FixedLatentSize, _folder.UnetPath), (_vae.Decoder.FixedLatentSize, _vae.Decoder.FilePath),
                     (_vae.Float32Fallback?.FixedLatentSize, _vae.Float32Fallback?.FilePath ?? "") })
        {
            if (fixedSize is { } s && (s.Height != latentH || s.Width != latentW))
                throw new ModelIncompatibleException(width != s.Width * 8 ? nameof(r.Width) : nameof(r.Height), file,
                    called => $"{called}: {file} has static latent dimensions {s.Height}x{s.Width}, so it only makes {s.Width * 8}x{s.Height * 8} images; {width}x{height} was requested.");
        }
    }

    /// <inheritdoc/>
    public override void CheckScheduler(IScheduler scheduler, GenerationRequest request)
    {
        // A flow-matching sampler follows a velocity field; this UNet predicts noise (or v), so its picture would be garbage.
        if (scheduler is IFlowMatchScheduler)
            throw new ModelIncompatibleException(nameof(GenerationRequest.Scheduler), Info.Root, called => $"{called} '{request.Scheduler}' is a flow-matching sampler, for SD 3 and FLUX; {Info.Family.Name} runs the diffusion samplers (euler, dpmpp_2m, …).");
        // Starting from an image adds noise, which a plug-in sampler may not be able to do: refused before any work.
        if (request.InitImage is not null || (request.InitLatents is not null && request.DenoisingStart is null))
            LatentPreparation.CheckScheduler(scheduler, request.Scheduler ?? Info.Scheduler, request.StepCount);
    }

    /// <inheritdoc/>
    public override bool TakesAestheticScores => _sdxlPromptEncoder?.Refiner == true;

    /// <inheritdoc/>
    public override IDisposable UseConditioner() => new TextEncoderLeases(_textEncoder.Use(), _textEncoder2?.Use());

    /// <inheritdoc/>
    public override UNetInputs Encode(string[] prompts, int images, GenerationRequest request, int latentHeight, int latentWidth,
        List<string> warnings, TimingRecorder timings, RunOptions runOptions) =>
        _sdxlPromptEncoder is { } xl
            ? xl.Encode(prompts, images, request.PromptWeighting, TimeIds(request, prompts.Length, latentHeight, latentWidth), warnings, timings, runOptions)
            : _promptEncoder.Encode(prompts, images, request.PromptWeighting, warnings, timings, runOptions);

    /// <inheritdoc/>
    public override string ConditioningKey(GenerationRequest request, int rows, int latentHeight, int latentWidth) =>
        _sdxlPromptEncoder is null ? ""
            : string.Join(",", TimeIds(request, rows, latentHeight, latentWidth).SelectMany(t => t).Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));

    /// <inheritdoc/>
    public override UNetInputs WithGuidance(UNetInputs inputs, float guidance) =>
        Info.Family.GuidanceEmbeddingWidth is { } width ? inputs with { TimestepCond = GuidanceEmbedding.Compute(guidance, width, inputs.Batch) } : inputs;

    /// <inheritdoc/>
    public override string? PromptNote(GenerationRequest request, bool classifierFree) =>
        // LCM takes guidance as an embedding and has no unconditional pass to feed a negative prompt into (diffusers' LCM
        // pipeline has no negative_prompt at all): say so rather than drop what the user wrote without a word.
        Info.Family.Distillation == Distillation.LatentConsistency && !string.IsNullOrWhiteSpace(request.NegativePrompt)
            ? "The negative prompt is not used by LCM models (they run no unconditional pass); it was ignored."
            : null;

    /// <inheritdoc/>
    public override PreparedLatents PrepareLatents(GenerationRequest request, IScheduler scheduler, TorchGenerator generator, int images,
        int latentHeight, int latentWidth, RunOptions runOptions) =>
        InitialLatents.Prepare(request, scheduler, () => _vaeEncoder.Value!, Info.Family.VaeScalingFactor, _unet.InputChannels, generator,
            images, latentHeight, latentWidth, TrainTimesteps, runOptions);

    private float[][] TimeIds(GenerationRequest request, int rows, int latentHeight, int latentWidth) =>
        SdxlTimeIds.For(request, rows, _sdxlPromptEncoder!.Refiner, latentHeight * VaeDecoder.Factor, latentWidth * VaeDecoder.Factor);

    private sealed class TextEncoderLeases(OnnxComponent.Lease first, OnnxComponent.Lease? second) : IDisposable
    {
        public void Dispose()
        {
            second?.Dispose();
            first.Dispose();
        }
    }
}
