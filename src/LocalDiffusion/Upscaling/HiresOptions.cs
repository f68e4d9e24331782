namespace LocalDiffusion.Upscaling;

/// <summary>
/// AUTOMATIC1111's hires fix: a first pass at the request's size, its result enlarged, then an img2img second pass at the
/// enlarged size (StableDiffusionProcessingTxt2Img's <c>enable_hr</c> and <c>hr_*</c> fields). See <c>HiresFix</c>.
/// </summary>
public sealed record HiresOptions
{
    /// <summary>How much larger each side gets (A1111's <c>hr_scale</c>, default 2); unused when a resize size is given.</summary>
    public double Scale { get; init; } = 2;

    /// <summary>
    /// The target width (A1111's <c>hr_resize_x</c>); 0 with <see cref="ResizeHeight"/> set keeps the aspect ratio; both 0
    /// (default): <see cref="Scale"/> decides. With both given the picture is stretched to that size.
    /// </summary>
    public int ResizeWidth { get; init; }

    /// <summary>The target height (A1111's <c>hr_resize_y</c>); see <see cref="ResizeWidth"/>.</summary>
    public int ResizeHeight { get; init; }

    /// <summary>
    /// How the first pass is enlarged (A1111's <c>hr_upscaler</c>): a latent mode ("Latent", "Latent (antialiased)",
    /// "Latent (bicubic)", "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)"), "None" or
    /// "Lanczos" (the decoded picture by Lanczos), "Nearest", or the <see cref="ImageUpscaler.Name"/> of
    /// <see cref="Model"/>. Null: "Latent", A1111's default.
    /// </summary>
    public string? Upscaler { get; init; }

    /// <summary>The ESRGAN-family model <see cref="Upscaler"/> names, when it names one; the caller owns it.</summary>
    public ImageUpscaler? Model { get; init; }

    /// <summary>Steps of the second pass (A1111's <c>hr_second_pass_steps</c>); 0 (default): the first pass's steps.</summary>
    public int SecondPassSteps { get; init; }

    /// <summary>How much the second pass changes the enlarged picture, in (0, 1] (A1111's <c>denoising_strength</c>, default 0.7).</summary>
    public float Strength { get; init; } = 0.7f;

    /// <summary>The second pass's scheduler (A1111's <c>hr_sampler_name</c>); null: the first pass's.</summary>
    public string? Scheduler { get; init; }

    /// <summary>The second pass's prompt (A1111's <c>hr_prompt</c>); null: the first pass's.</summary>
    public string? Prompt { get; init; }

    /// <summary>The second pass's negative prompt (A1111's <c>hr_negative_prompt</c>); null: the first pass's.</summary>
    public string? NegativePrompt { get; init; }
}
