using LocalDiffusion.Imaging;

namespace LocalDiffusion;

/// <summary>How a control image is turned into the picture a ControlNet sees.</summary>
public enum ControlPreprocessor
{
    /// <summary>The image as given (a depth map, pose or edge picture made elsewhere), resized to the output size.</summary>
    None,

    /// <summary>Canny edges: white edges on black, as A1111's and diffusers' canny ControlNets expect.</summary>
    Canny,
}

/// <summary>
/// One ControlNet of a request (<see cref="GenerationRequest.ControlNets"/>): the network, its control image, how
/// strongly its residuals count and during which part of the schedule. Several units add their residuals, as diffusers'
/// MultiControlNetModel does.
/// </summary>
public sealed record ControlNetUnit
{
    /// <summary>A1111's default low Canny threshold.</summary>
    public const float DefaultCannyLowThreshold = 100f;

    /// <summary>A1111's default high Canny threshold.</summary>
    public const float DefaultCannyHighThreshold = 200f;

    /// <summary>The control image, at any size: it is preprocessed, then resized to the output size.</summary>
    public required InitImage Image { get; init; }

    /// <summary>
    /// A ControlNet folder holding model.onnx, or the .onnx file. The pipeline loads it once and keeps it
    /// (<c>StableDiffusionPipeline.LoadControlNet</c> loads it ahead of a request).
    /// </summary>
    public string? ModelPath { get; init; }

    /// <summary>diffusers' <c>controlnet_conditioning_scale</c> (A1111's weight): the factor on every residual. 0 to 2 is usual; 0 to 10 accepted.</summary>
    public float Scale { get; init; } = 1f;

    /// <summary>The fraction of the denoising steps before which this unit is off (diffusers' <c>control_guidance_start</c>), 0 to 1.</summary>
    public float GuidanceStart { get; init; }

    /// <summary>The fraction of the denoising steps after which this unit is off (<c>control_guidance_end</c>), 0 to 1, above <see cref="GuidanceStart"/>.</summary>
    public float GuidanceEnd { get; init; } = 1f;

    /// <summary>What is done to <see cref="Image"/> first.</summary>
    public ControlPreprocessor Preprocessor { get; init; } = ControlPreprocessor.None;

    /// <summary>Canny's low hysteresis threshold on the gradient magnitude (A1111's default 100).</summary>
    public float CannyLowThreshold { get; init; } = DefaultCannyLowThreshold;

    /// <summary>Canny's high hysteresis threshold (A1111's default 200).</summary>
    public float CannyHighThreshold { get; init; } = DefaultCannyHighThreshold;
}
