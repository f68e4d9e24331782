using LocalDiffusion.Imaging;

namespace LocalDiffusion;

/// <summary>What to generate.</summary>
public sealed record GenerationRequest
{
    /// <summary>The text prompt.</summary>
    public required string Prompt { get; init; }

    /// <summary>What the image should not show; "" is the unconditional prompt, as in diffusers.</summary>
    public string NegativePrompt { get; init; } = "";

    /// <summary>
    /// LoRAs for this request, added to <see cref="PipelineOptions.Loras"/>; <c>&lt;lora:NAME:WEIGHT&gt;</c> tags in
    /// <see cref="Prompt"/> add more (resolved in <see cref="PipelineOptions.LoraDirectory"/> and taken out of the text).
    /// The pipeline re-merges its weights only when the set changes between requests.
    /// </summary>
    public IReadOnlyList<LoraAdapter>? Loras { get; init; }

    /// <summary>Whether a prompt names a textual-inversion embedding (set when the pipeline resolves the request).</summary>
    internal bool UsesEmbeddings { get; init; }

    /// <summary>
    /// Reads AUTOMATIC1111's attention syntax in both prompts: <c>(word)</c> ×1.1, <c>((word))</c> ×1.21, <c>[word]</c> ÷1.1,
    /// <c>(word:1.3)</c>, literal <c>\(</c> <c>\)</c>, and <c>BREAK</c> to start a new 75-token chunk. Default true;
    /// false encodes the prompts as plain text.
    /// </summary>
    public bool PromptWeighting { get; init; } = true;

    /// <summary>
    /// Denoising steps (the scheduler may call the UNet more than once per step, e.g. Heun); null: the model's default
    /// (<see cref="Model.ModelFamily.DefaultSteps"/>: 20, LCM 4, Turbo 1, or the folder's localdiffusion.json).
    /// </summary>
    public int? Steps { get; init; }

    /// <summary>
    /// Classifier-free guidance scale; at ≤ 1 the negative prompt is not used and each step runs one UNet pass. Null: the
    /// model's default (<see cref="Model.ModelFamily.DefaultGuidanceScale"/>: SD 7.5, SDXL 5, LCM 8.5, Turbo 0).
    /// </summary>
    public float? GuidanceScale { get; init; }

    /// <summary>The step count once the pipeline has filled in the model's default (every stage runs on a resolved request).</summary>
    internal int StepCount => Steps ?? throw new InvalidOperationException("Steps was not resolved: the pipeline fills in the model's default before any stage runs.");

    /// <summary>
    /// The fewest denoising evaluations this request runs (img2img skips the first 1 − strength of the steps; higher-order
    /// schedulers run more, never fewer): the server spreads previews over these, as PreviewSteps past the end are refused.
    /// </summary>
    internal int PreviewableSteps => InitImage is null ? StepCount : StrengthSchedule.BeginIndex(StepCount, EffectiveStrength, 1).InitSteps;

    /// <summary>The guidance scale once the pipeline has filled in the model's default.</summary>
    internal float Guidance => GuidanceScale ?? throw new InvalidOperationException("GuidanceScale was not resolved: the pipeline fills in the model's default before any stage runs.");

    /// <summary>Image width in pixels, a multiple of 8; null: the model's native size.</summary>
    public int? Width { get; init; }

    /// <summary>Image height in pixels, a multiple of 8; null: the model's native size.</summary>
    public int? Height { get; init; }

    /// <summary>How many images, generated as one batch from one seed (diffusers' num_images_per_prompt).</summary>
    public int ImageCount { get; init; } = 1;

    /// <summary>
    /// The seed of the torch-compatible generator (the same seed gives diffusers' picture); null picks one at
    /// random and reports it in the result.
    /// </summary>
    public long? Seed { get; init; }

    /// <summary>
    /// Gives image i of the batch its own seed, <see cref="Seed"/> + i, as AUTOMATIC1111 numbers a batch: each image is
    /// the one a request for that seed alone makes (its own initial noise and sampler noise), so any one can be made again
    /// by itself; they are still denoised together. False (default): diffusers' behaviour, one generator draws the whole
    /// batch's noise. Applies to text-to-image, img2img and inpainting; not with <see cref="InitialLatents"/>,
    /// <see cref="InitLatents"/> or a base → refiner hand-off, where it is refused.
    /// </summary>
    public bool SeedPerImage { get; init; }

    /// <summary>Scheduler id or name (e.g. <c>euler_a</c>, "DPM++ 2M Karras"); null: the model's scheduler_config.json.</summary>
    public string? Scheduler { get; init; }

    /// <summary>
    /// Unit-variance initial latents [ImageCount,4,Height/8,Width/8] to use instead of drawing them from the seed
    /// (e.g. read from a .npy file); they are scaled by the scheduler's initial sigma like drawn ones.
    /// </summary>
    public float[]? InitialLatents { get; init; }

    /// <summary>
    /// DDIM's η (0 deterministic, 1 DDPM-like) and TCD's γ (its stochasticity, in [0, 1]); other schedulers ignore it.
    /// Null means 0, the default of diffusers' StableDiffusionPipeline (TCD's authors suggest γ = 0.3).
    /// </summary>
    public float? Eta { get; init; }

    /// <summary>
    /// img2img: the picture to start from (resized to the requested Width×Height when its size differs); null for
    /// text-to-image. With <see cref="MaskImage"/> it is the picture to inpaint.
    /// </summary>
    public InitImage? InitImage { get; init; }

    /// <summary>
    /// A test seam for SD 3/FLUX: the init image already as diffusers' image processor hands it to the VAE (CHW floats in
    /// [−1, 1] at Width×Height), used instead of <see cref="InitImage"/>'s pixels, so that a reference built from a formula
    /// rather than an 8-bit picture can be matched. <see cref="InitImage"/> must still be set (its size and the paste-back).
    /// </summary>
    internal float[]? InitPixels { get; init; }

    /// <summary>
    /// img2img: how much of the schedule runs, in (0, 1]: the first Steps − int(Steps·Strength) steps are skipped and the
    /// init image is noised to the level where the rest begins (diffusers' <c>strength</c>). Null: diffusers' default,
    /// 0.8 for img2img and 1 for inpainting (where 1 starts the repainted region from pure noise); 0.3 on an SDXL refiner;
    /// 0.6 for both on SD 3 and FLUX, whose skipped part is int(Steps − Steps·Strength) steps (rounded down, so any
    /// strength above 0 leaves a step).
    /// </summary>
    public float? Strength { get; init; }

    /// <summary>The strength in effect: <see cref="Strength"/>, else 1 with a mask and 0.8 without.</summary>
    internal float EffectiveStrength => Strength ?? (MaskImage is null ? 0.8f : 1f);

    /// <summary>
    /// Inpainting: white (≥ 128 in the mask's luminance) marks the pixels to repaint, black those to keep; the same size
    /// rule as <see cref="InitImage"/>. Needs <see cref="InitImage"/>.
    /// </summary>
    public InitImage? MaskImage { get; init; }

    /// <summary>Inpainting: Gaussian blur radius (σ, in pixels) applied to the mask before it is used; 0 = a hard edge.</summary>
    public float MaskBlur { get; init; }

    /// <summary>
    /// SDXL micro-conditioning (diffusers' <c>original_size</c>): the size the picture should look as if it had been
    /// before resizing. Null: the generated image's size. SDXL models only (base and refiner).
    /// </summary>
    public PixelSize? OriginalSize { get; init; }

    /// <summary>
    /// SDXL micro-conditioning (diffusers' <c>crops_coords_top_left</c>): the picture should look cropped this far from the
    /// top and left; (0, 0), the default, asks for a well-centred picture. SDXL models only.
    /// </summary>
    public CropCoordinates? CropsCoordsTopLeft { get; init; }

    /// <summary>SDXL base micro-conditioning (diffusers' <c>target_size</c>). Null: the generated image's size. Not the refiner's.</summary>
    public PixelSize? TargetSize { get; init; }

    /// <summary>The negative half's <see cref="OriginalSize"/>; null: <see cref="OriginalSize"/>'s value. SDXL models only.</summary>
    public PixelSize? NegativeOriginalSize { get; init; }

    /// <summary>The negative half's <see cref="CropsCoordsTopLeft"/>; null: <see cref="CropsCoordsTopLeft"/>'s value. SDXL models only.</summary>
    public CropCoordinates? NegativeCropsCoordsTopLeft { get; init; }

    /// <summary>The negative half's <see cref="TargetSize"/>; null: <see cref="TargetSize"/>'s value. SDXL base only.</summary>
    public PixelSize? NegativeTargetSize { get; init; }

    /// <summary>SDXL refiner micro-conditioning (diffusers' <c>aesthetic_score</c>, a LAION aesthetic score); null: 6. Refiner only.</summary>
    public float? AestheticScore { get; init; }

    /// <summary>The negative half's aesthetic score (diffusers' <c>negative_aesthetic_score</c>); null: 2.5. Refiner only.</summary>
    public float? NegativeAestheticScore { get; init; }

    /// <summary>
    /// img2img from latents instead of pixels: [ImageCount (or 1),4,Height/8,Width/8] values (16 channels on SD 3/FLUX,
    /// where they stand for the encoded picture as SD 3's img2img takes a latent <c>image</c>) in the model's latent space,
    /// already scaled, as <see cref="GenerationResult.FinalLatents"/> holds them (e.g. a base model's latents stopped at
    /// <see cref="DenoisingEnd"/>). With <see cref="DenoisingStart"/> the loop continues from them as they are; without
    /// it they are noised to <see cref="Strength"/> as an encoded init image would be. Width and Height must match.
    /// </summary>
    public float[]? InitLatents { get; init; }

    /// <summary>
    /// Stops the schedule early, at this fraction of it in (0, 1) (diffusers' <c>denoising_end</c>): only the timesteps
    /// ≥ int(round(T − f·T)) run, T being the scheduler's training timesteps. The partly denoised
    /// <see cref="GenerationResult.FinalLatents"/> are what a refiner continues from (see
    /// <c>StableDiffusionPipeline.GenerateWithRefinerAsync</c>); the images are decoded from them as they are.
    /// </summary>
    public float? DenoisingEnd { get; init; }

    /// <summary>
    /// Starts the schedule at this fraction of it in (0, 1) (diffusers' <c>denoising_start</c>), continuing from
    /// <see cref="InitLatents"/> without adding noise: the timesteps below int(round(T − f·T)) run. Strength is then unused.
    /// </summary>
    public float? DenoisingStart { get; init; }

    /// <summary>
    /// Evaluations (1-based, as in <see cref="GenerationProgress.Step"/>) after which the current latents are decoded
    /// into a preview, delivered in <see cref="GenerationProgress.Preview"/>; null or empty: no previews. Each preview
    /// costs one VAE decode per image.
    /// </summary>
    public IReadOnlyCollection<int>? PreviewSteps { get; init; }

    /// <summary>
    /// When cancelled, denoising ends after the evaluation under way and the latents reached so far are decoded, as
    /// AUTOMATIC1111's Interrupt does: a partly denoised picture, where cancelling the generation itself gives none. The
    /// result's <see cref="GenerationResult.Warnings"/> say after which step it stopped.
    /// </summary>
    public CancellationToken FinishEarly { get; init; }

    /// <summary>
    /// SD 3 and FLUX: the most T5 tokens the prompt is encoded to (diffusers' <c>max_sequence_length</c>); null: the
    /// family's (SD 3 and FLUX.1-schnell 256, FLUX.1-dev 512). Unused by CLIP-only families.
    /// </summary>
    public int? MaxSequenceLength { get; init; }

    /// <summary>
    /// ControlNets steering this generation (SD 1.x/2.x and SDXL UNets exported with residual inputs): each unit's residuals, times
    /// its scale, are added to the UNet's skip connections inside its guidance window; several units add up. Works with
    /// text-to-image, img2img and inpainting. Null or empty: none.
    /// </summary>
    public IReadOnlyList<ControlNetUnit>? ControlNets { get; init; }

    /// <summary>
    /// diffusers' <c>guess_mode</c> (A1111's "ControlNet is more important"): with classifier-free guidance the ControlNets
    /// see only the prompt's half and the negative half gets no residuals, and residual j of n is weighted 10^(−1 + j/n).
    /// </summary>
    public bool ControlNetGuessMode { get; init; }
}
