namespace LocalDiffusion.Errors;

/// <summary>Where in a generation a non-finite value (NaN or infinity) first appeared.</summary>
public enum NumericsStage
{
    /// <summary>The text encoder's hidden states.</summary>
    TextEncoder,
    /// <summary>The UNet's noise prediction.</summary>
    Unet,
    /// <summary>Combining the two classifier-free-guidance halves at the request's guidance scale.</summary>
    Guidance,
    /// <summary>The scheduler's update of the latents.</summary>
    Scheduler,
    /// <summary>The latents divided by the VAE scaling factor, before decoding.</summary>
    VaeInput,
    /// <summary>The VAE decoder's image.</summary>
    VaeDecoder,
    /// <summary>The text conditioning the UNet is given (the text encoders' output after the prompt's attention weights).</summary>
    Conditioning,
    /// <summary>A ControlNet's residuals, before the UNet adds them.</summary>
    ControlNet,
    /// <summary>An image upscaler's output (ESRGAN-family ONNX models).</summary>
    Upscaler,
}

/// <summary>
/// A generation produced NaN or infinity. The message says where it first appeared (which component, which step and
/// scheduler) and the likely cause there, so the picture is never a silent black or grey image.
/// </summary>
public sealed class GenerationNumericsException : Exception, LocalDiffusion.Errors.ILocalDiffusionError
{
    /// <summary>Creates the exception; <paramref name="message"/> names the stage and what usually causes it there.</summary>
    public GenerationNumericsException(NumericsStage stage, int? step, string message) : base(message)
    {
        Stage = stage;
        Step = step;
    }

    /// <summary>Where the values were first non-finite.</summary>
    public NumericsStage Stage { get; }

    /// <summary>The 1-based denoising step, for <see cref="NumericsStage.Unet"/>, <see cref="NumericsStage.Guidance"/>
    /// and <see cref="NumericsStage.Scheduler"/>; else null.</summary>
    public int? Step { get; }

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorKind Kind => LocalDiffusion.Errors.ErrorKind.Numerics;

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorCulprit Culprit => new() { Stage = Stage.ToString(), Step = Step };

    /// <inheritdoc/>
    public string Describe(string fieldName) => Message;
}
