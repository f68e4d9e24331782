using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Model;

/// <summary>The network architecture a model folder holds.</summary>
public enum ModelArchitecture
{
    /// <summary>Stable Diffusion 1.x: one CLIP ViT-L text encoder (width 768), <c>&lt;|endoftext|&gt;</c> padding.</summary>
    StableDiffusion1,

    /// <summary>Stable Diffusion 2.x: OpenCLIP ViT-H text encoder (width 1024), <c>!</c> padding (id 0), ε or v prediction.</summary>
    StableDiffusion2,

    /// <summary>SDXL base: two text encoders, pooled <c>text_embeds</c> and <c>time_ids</c> UNet inputs.</summary>
    StableDiffusionXL,

    /// <summary>SDXL refiner: text_encoder_2 only, aesthetic-score <c>time_ids</c>.</summary>
    StableDiffusionXLRefiner,

    /// <summary>Stable Diffusion 3 / 3.5: an MMDiT transformer, CLIP-L + CLIP-G + T5, 16 latent channels, flow matching.</summary>
    StableDiffusion3,

    /// <summary>FLUX.1 (schnell, dev): a transformer over 2×2-packed latents, CLIP-L pooled + T5, 16 latent channels, flow matching.</summary>
    Flux,
}

/// <summary>How a model applies the guidance scale.</summary>
public enum GuidanceMode
{
    /// <summary>A batch of [negative, prompt] rows combined as uncond + g·(cond − uncond) when g &gt; 1 (SD 1.x/2.x/XL, SD 3).</summary>
    ClassifierFree,

    /// <summary>The scale is an input of the denoiser (LCM's timestep_cond, FLUX.1-dev's guidance): one pass, no negative prompt.</summary>
    Embedded,

    /// <summary>No guidance at all (FLUX.1-schnell).</summary>
    None,
}

/// <summary>How a model was distilled for few-step sampling.</summary>
public enum Distillation
{
    /// <summary>An ordinary model: 20–50 steps with classifier-free guidance.</summary>
    None,

    /// <summary>Latent Consistency Model: the guidance scale is embedded (<c>timestep_cond</c>), no CFG batch, LCM scheduler.</summary>
    LatentConsistency,

    /// <summary>Adversarial diffusion distillation (SD-Turbo, SDXL-Turbo): guidance 0, 1–4 steps, trailing spacing.</summary>
    Turbo,
}

/// <summary>
/// What kind of model a folder holds, decided in this one place from model_index.json, the tokenizer, the scheduler
/// config and the UNet's declared inputs. The pipeline asks it what to feed the UNet and whether classifier-free
/// guidance runs; nothing else looks at the inputs to guess.
/// </summary>
public sealed record ModelFamily
{
    /// <summary>The UNet inputs beyond sample/timestep/encoder_hidden_states that some families declare.</summary>
    public static readonly IReadOnlyList<string> ConditioningInputs = ["text_embeds", "time_ids", "timestep_cond"];

    private static readonly string[] SupportedPipelines =
        ["OnnxStableDiffusionPipeline", "StableDiffusionPipeline", "ORTStableDiffusionPipeline",
         "OnnxStableDiffusionInpaintPipeline", "StableDiffusionInpaintPipeline", "ORTStableDiffusionInpaintPipeline",
         "LatentConsistencyModelPipeline", "ORTLatentConsistencyModelPipeline",
         // SDXL base under its img2img/inpaint class names (the refiner is told apart by its folder and UNet).
         "StableDiffusionXLPipeline", "ORTStableDiffusionXLPipeline", "OnnxStableDiffusionXLPipeline",
         "StableDiffusionXLImg2ImgPipeline", "ORTStableDiffusionXLImg2ImgPipeline",
         "StableDiffusionXLInpaintPipeline", "ORTStableDiffusionXLInpaintPipeline"];

    // Pipelines recognised by name and refused with what they are, before any session is opened.
    private static readonly (string Fragment, string What)[] UnsupportedPipelines =
    [
        // SD 3 and FLUX text-to-image are claimed by their family adapters (Families/) before this check; their other pipelines land here.
        ("StableDiffusion3", "a Stable Diffusion 3 pipeline LocalDiffusion does not run (it runs StableDiffusion3Pipeline text-to-image)"),
        ("Flux", "a FLUX pipeline LocalDiffusion does not run (it runs FluxPipeline text-to-image)"),
        ("ControlNet", "a ControlNet pipeline (an extra conditioning network)"),
        ("Upscale", "an upscaling pipeline"),
        ("Depth2Img", "a depth-to-image pipeline"),
        ("InstructPix2Pix", "an InstructPix2Pix pipeline"),
    ];

    /// <summary>SD 1.x, 2.x, SDXL base or refiner.</summary>
    public required ModelArchitecture Architecture { get; init; }

    /// <summary>What the UNet predicts (ε, v or x₀), from the scheduler config.</summary>
    public PredictionType Prediction { get; init; } = PredictionType.Epsilon;

    /// <summary>A 9-channel inpainting UNet (latents ‖ mask ‖ masked-image latents).</summary>
    public bool Inpainting { get; init; }

    /// <summary>Few-step distillation, if any.</summary>
    public Distillation Distillation { get; init; }

    /// <summary>The UNet's extra inputs (<see cref="ConditioningInputs"/>) it declares.</summary>
    public IReadOnlyList<string> ExtraUnetInputs { get; init; } = [];

    /// <summary>
    /// Width of an LCM-distilled UNet's <c>timestep_cond</c> (its config's <c>time_cond_proj_dim</c>, 256): the guidance
    /// scale goes in as this embedding instead of as a CFG batch. Null for other UNets.
    /// </summary>
    public int? GuidanceEmbeddingWidth { get; init; }

    /// <summary>
    /// Steps a request should default to: localdiffusion.json's, else the family's (diffusers' pipeline defaults:
    /// SD 20 (LocalDiffusion's), LCM 4, Turbo 1).
    /// </summary>
    public int DefaultSteps { get; init; } = 20;

    /// <summary>Guidance scale a request should default to: localdiffusion.json's, else SD 7.5, SDXL 5, LCM 8.5, Turbo 0.</summary>
    public float DefaultGuidanceScale { get; init; } = 7.5f;

    /// <summary>
    /// The VAE latent scaling factor: the VAE config's when the folder has one, else the family's (SD 1.x/2.x 0.18215,
    /// SDXL base and refiner 0.13025: Olive's SDXL exports ship no VAE config.json, and optimum's 0.18215 fallback would
    /// scale SDXL latents into a washed-out picture).
    /// </summary>
    public float VaeScalingFactor { get; init; } = ModelFolder.DefaultVaeScalingFactor;

    /// <summary>Why LocalDiffusion cannot run this family yet, or null when it can.</summary>
    public string? Unsupported { get; init; }

    /// <summary>How the guidance scale is applied: embedded for LCM and FLUX.1-dev, none for FLUX.1-schnell.</summary>
    public GuidanceMode Guidance
    {
        get => _guidance ?? (Distillation == Distillation.LatentConsistency ? GuidanceMode.Embedded : GuidanceMode.ClassifierFree);
        init => _guidance = value;
    }

    private readonly GuidanceMode? _guidance;

    /// <summary>The name a family adapter gives its variant ("FLUX.1-dev"), which <see cref="Name"/> then is.</summary>
    public string? VariantName { get; init; }

    /// <summary>A short name such as "SD 2.x (v-prediction), inpainting".</summary>
    public string Name
    {
        get
        {
            if (VariantName is not null) return VariantName;
            var name = Architecture switch
            {
                ModelArchitecture.StableDiffusion1 => "SD 1.x",
                ModelArchitecture.StableDiffusion2 => "SD 2.x",
                ModelArchitecture.StableDiffusionXL => "SDXL base",
                _ => "SDXL refiner",
            };
            if (Prediction != PredictionType.Epsilon)
                name += Prediction == PredictionType.VPrediction ? " (v-prediction)" : " (sample prediction)";
            if (Inpainting) name += ", inpainting";
            if (Distillation == Distillation.LatentConsistency) name += ", LCM-distilled";
            else if (Distillation == Distillation.Turbo) name += ", Turbo";
            return name;
        }
    }

    /// <summary>
    /// Whether a generation at <paramref name="guidanceScale"/> runs classifier-free guidance, i.e. a batch of
    /// [unconditional, conditional] rows combined as uncond + g·(cond − uncond): diffusers' <c>guidance_scale &gt; 1</c>,
    /// except for LCM-distilled UNets, which take the scale as an embedding and never run the unconditional batch.
    /// The one place this is decided.
    /// </summary>
    public bool UsesClassifierFreeGuidance(float guidanceScale) => Guidance == GuidanceMode.ClassifierFree && guidanceScale > 1f;

    /// <summary>
    /// The checks that need only the folder: pipeline classes that are not Stable Diffusion 1.x/2.x/SDXL base UNet
    /// pipelines are refused by name, and an SDXL folder needs text_encoder_2/ and tokenizer_2/, before any session is opened.
    /// </summary>
    /// <exception cref="ModelLoadException">model_index.json names a pipeline LocalDiffusion does not run.</exception>
    public static void CheckFolder(ModelFolder folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        var index = Path.Combine(folder.Root, "model_index.json");
        var cls = folder.PipelineClass;
        if (folder.HasTextEncoder2 || (cls is not null && cls.Contains("XL", StringComparison.Ordinal)))
        {
            if (cls is not null && cls.Contains("XL", StringComparison.Ordinal) && !SupportedPipelines.Contains(cls))
                throw new ModelLoadException(index,
                    $"pipeline class '{cls}' is an SDXL pipeline LocalDiffusion does not run (SDXL base text-to-image is StableDiffusionXLPipeline).");
            if (folder.TextEncoder2Path is null)
                throw new ModelLoadException(Path.Combine(folder.Root, "text_encoder_2", "model.onnx"),
                    $"file not found: this is an SDXL pipeline ({cls ?? "text_encoder_2 listed"}), whose second text encoder was expected here.");
            if (folder.Tokenizer2Directory is null)
                throw new ModelLoadException(Path.Combine(folder.Root, "tokenizer_2"),
                    "folder not found: this is an SDXL pipeline, whose second (OpenCLIP) tokenizer was expected here.");
        }
        if (cls is null || SupportedPipelines.Contains(cls)) return;
        foreach (var (fragment, what) in UnsupportedPipelines)
            if (cls.Contains(fragment, StringComparison.Ordinal))
                throw new ModelLoadException(index, $"pipeline class '{cls}' is {what}, which LocalDiffusion does not run.");
        throw new ModelLoadException(index, $"pipeline class '{cls}' is not supported; expected one of {string.Join(", ", SupportedPipelines)}.");
    }

    /// <summary>
    /// Decides the family from the folder, the UNet's declared inputs and its channel count, the text encoder's width,
    /// the tokenizer's pad token and the scheduler config.
    /// </summary>
    /// <param name="folder">The model folder (pipeline class, defaults file).</param>
    /// <param name="unetInputs">The UNet session's declared inputs.</param>
    /// <param name="unetChannels">Channels of the UNet's sample input (9: inpainting).</param>
    /// <param name="textEncoderWidth">The text encoder's hidden width when declared.</param>
    /// <param name="padDiffersFromEos">The tokenizer pads with something other than EOS: OpenCLIP's <c>!</c> (SD 2.x).</param>
    /// <param name="scheduler">The folder's scheduler config.</param>
    public static ModelFamily Detect(ModelFolder folder, IReadOnlyDictionary<string, TensorSpec> unetInputs, int unetChannels,
        int? textEncoderWidth, bool padDiffersFromEos, SchedulerConfig scheduler)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(unetInputs);
        ArgumentNullException.ThrowIfNull(scheduler);
        var extra = ConditioningInputs.Where(unetInputs.ContainsKey).ToList();
        var architecture = extra.Contains("text_embeds") || extra.Contains("time_ids")
            ? (unetInputs.TryGetValue("encoder_hidden_states", out var h) && h.FixedDimension(2) == 1280
               // the refiner's time_ids carry an aesthetic score instead of the target size: 5 of them, not 6
               || (unetInputs.TryGetValue("time_ids", out var ids) && ids.FixedDimension(1) == 5)
                ? ModelArchitecture.StableDiffusionXLRefiner : ModelArchitecture.StableDiffusionXL)
            : textEncoderWidth == 1024 || padDiffersFromEos || scheduler.PredictionType == PredictionType.VPrediction
                ? ModelArchitecture.StableDiffusion2
                : ModelArchitecture.StableDiffusion1;
        var named = Path.GetFileName(folder.Root.TrimEnd(Path.DirectorySeparatorChar));
        var distillation = extra.Contains("timestep_cond") || folder.PipelineClass?.Contains("LatentConsistency", StringComparison.Ordinal) == true
                || folder.Defaults?.Distillation == "lcm"
            ? Distillation.LatentConsistency
            : folder.Defaults?.Distillation == "turbo"
              // sd-turbo and sdxl-turbo exports keep StableDiffusionPipeline and differ only in weights; their folder name says it.
              || (folder.Defaults?.Distillation is null && named.Contains("turbo", StringComparison.OrdinalIgnoreCase))
                ? Distillation.Turbo
                : Distillation.None;
        string? unsupported = null;
        if (architecture == ModelArchitecture.StableDiffusionXLRefiner && !folder.IsRefiner)
            unsupported = $"this is an SDXL refiner UNet (inputs {string.Join(", ", extra)}, 1280-wide encoder_hidden_states or 5 time_ids: original size, crop, aesthetic score), but the folder is not a refiner's (it has text_encoder/ and no requires_aesthetics_score).";
        else if (architecture != ModelArchitecture.StableDiffusionXLRefiner && folder.IsRefiner)
            unsupported = $"the folder is an SDXL refiner's (text_encoder_2 only or requires_aesthetics_score), but the UNet is not a refiner's (inputs {(extra.Count == 0 ? "none of text_embeds, time_ids" : string.Join(", ", extra))}; the refiner takes 5 time_ids).";
        else if (architecture == ModelArchitecture.StableDiffusionXL && !folder.HasTextEncoder2)
            unsupported = $"this is an SDXL UNet (inputs {string.Join(", ", extra)}), but the folder has no text_encoder_2: an SDXL UNet needs both of SDXL's text encoders.";
        else if (architecture == ModelArchitecture.StableDiffusionXL && !(extra.Contains("text_embeds") && extra.Contains("time_ids")))
            unsupported = $"the folder has SDXL's text_encoder_2, but the UNet does not take both text_embeds and time_ids (it declares {(extra.Count == 0 ? "neither" : string.Join(", ", extra))}).";
        int? embeddingWidth = null;
        if (unetInputs.TryGetValue("timestep_cond", out var cond))
        {
            embeddingWidth = cond.FixedDimension(1) is { } d ? (int)d : null;
            if (embeddingWidth is null or < 4)
                unsupported = $"its timestep_cond input (an LCM-distilled UNet's guidance embedding) is {cond.Describe()}; a declared width such as [batch,256] is needed.";
        }
        return new ModelFamily
        {
            Architecture = architecture,
            Prediction = scheduler.PredictionType ?? PredictionType.Epsilon,
            Inpainting = unetChannels == Denoising.UNet.InpaintingChannels,
            Distillation = distillation,
            ExtraUnetInputs = extra,
            GuidanceEmbeddingWidth = embeddingWidth,
            DefaultSteps = folder.Defaults?.Steps ?? distillation switch { Distillation.LatentConsistency => 4, Distillation.Turbo => 1, _ => 20 },
            // StableDiffusionXLPipeline's default guidance_scale is 5.
            DefaultGuidanceScale = folder.Defaults?.GuidanceScale ?? distillation switch
            {
                Distillation.LatentConsistency => 8.5f,
                Distillation.Turbo => 0f,
                _ => architecture is ModelArchitecture.StableDiffusionXL or ModelArchitecture.StableDiffusionXLRefiner ? 5f : 7.5f,
            },
            VaeScalingFactor = folder.VaeScalingFactor
                ?? (architecture is ModelArchitecture.StableDiffusionXL or ModelArchitecture.StableDiffusionXLRefiner
                    ? ModelFolder.SdxlVaeScalingFactor : ModelFolder.DefaultVaeScalingFactor),
            Unsupported = unsupported,
        };
    }

    /// <summary>The tasks a loaded model of this family can do, given whether the folder has a VAE encoder.</summary>
    public IReadOnlyList<string> Tasks(bool hasVaeEncoder) =>
        Architecture == ModelArchitecture.StableDiffusionXLRefiner
            ? (hasVaeEncoder ? ["img2img (SDXL refiner)", "refining a base's latents (hand-off)"] : ["refining a base's latents (hand-off)"])
        : Inpainting
            ? (hasVaeEncoder ? ["inpainting (9-channel UNet)"] : [])
            : [.. hasVaeEncoder ? ["text-to-image", "img2img", "inpainting"] : new[] { "text-to-image" },
               .. Architecture == ModelArchitecture.StableDiffusionXL ? ["base → refiner hand-off"] : Array.Empty<string>()];
}
