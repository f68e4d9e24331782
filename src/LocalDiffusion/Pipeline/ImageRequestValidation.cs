using LocalDiffusion.Latents;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Pipeline;

/// <summary>The up-front checks of a request's eta, init image, strength and mask, each naming the field.</summary>
internal static class ImageRequestValidation
{
    /// <param name="r">The request, defaults filled in.</param>
    /// <param name="vaeEncoderPath">The model's VAE encoder, null when it has none.</param>
    /// <param name="inpaintingUnet">Whether the denoiser is a 9-channel inpainting UNet.</param>
    /// <param name="stepsLeft">Steps a strength leaves of a schedule (steps, strength); null: SD's int(steps·strength).</param>
    public static void Check(GenerationRequest r, string? vaeEncoderPath, bool inpaintingUnet, Func<int, float, int>? stepsLeft = null)
    {
        if (inpaintingUnet && r.MaskImage is null)
            throw new ModelIncompatibleException(nameof(r.MaskImage), null, called => $"This model's UNet is a 9-channel inpainting UNet: it needs InitImage and {called} (white = repaint).");
        if (r.Eta is { } eta && (!float.IsFinite(eta) || eta < 0))
            throw new InvalidRequestException(nameof(r.Eta), eta, null, called => $"{called} must be a finite number ≥ 0.");
        CheckSchedulePart(r);
        if (r.InitImage is null)
        {
            if (r.MaskImage is not null)
                throw new InvalidRequestException(nameof(r.MaskImage), null, null, called => $"{called} needs an InitImage: the picture to inpaint.");
            if (r.InitLatents is not null && r.DenoisingStart is null) CheckStrength(r, stepsLeft);
            return;
        }
        if (r.InitLatents is not null)
            throw new InvalidRequestException(nameof(r.InitLatents), null, null, called => $"{called} and InitImage cannot be used together: each makes the starting latents.");
        if (vaeEncoderPath is null)
            throw new ModelIncompatibleException(nameof(r.InitImage), null, called => $"{called} needs the model's VAE encoder (vae_encoder/model.onnx), which this model folder does not have.");
        if (r.InitialLatents is not null)
            throw new InvalidRequestException(nameof(r.InitialLatents), null, null, called => $"{called} and InitImage cannot be used together: the init image makes the starting latents.");
        CheckStrength(r, stepsLeft);
        if (!float.IsFinite(r.MaskBlur) || r.MaskBlur < 0 || r.MaskBlur > 64)
            throw new InvalidRequestException(nameof(r.MaskBlur), r.MaskBlur, null, called => $"{called} must be between 0 and 64 pixels.");
    }

    /// <summary>
    /// The output size: Width/Height where given, else the init image's side rounded down to <paramref name="multiple"/>,
    /// else the model's default. A picture side below one multiple (with that side unset) is refused naming InitImage:
    /// rounding it down would leave nothing, and silently enlarging it would draw a picture nobody asked for.
    /// </summary>
    public static (int Width, int Height) OutputSize(GenerationRequest r, int multiple, int defaultWidth, int defaultHeight)
    {
        if (r.InitImage is not { } init) return (r.Width ?? defaultWidth, r.Height ?? defaultHeight);
        if ((r.Width is null && init.Width < multiple) || (r.Height is null && init.Height < multiple))
            throw new InvalidRequestException(nameof(r.InitImage), $"{init.Width}x{init.Height}", $"at least {multiple}x{multiple} pixels",
                called => $"{called} is {init.Width}x{init.Height} pixels; without Width and Height the output takes the picture's size rounded down to a multiple of {multiple}, which needs at least {multiple}x{multiple}: give a larger picture or set Width and Height (the picture is then stretched to them).");
        return (r.Width ?? init.Width / multiple * multiple, r.Height ?? init.Height / multiple * multiple);
    }

    /// <summary>
    /// The warning for an init image (or mask) resized to the generation's <paramref name="width"/>×<paramref name="height"/>,
    /// null when none is: the picture is stretched whole (its aspect ratio may change), by Lanczos as diffusers resizes
    /// it. Said rather than silent (issue 20), since a squashed picture is rarely what was meant.
    /// </summary>
    public static string? ResizeNote(GenerationRequest r, int width, int height)
    {
        var (image, name) = r.InitImage is { } i && (i.Width != width || i.Height != height) ? (i, nameof(r.InitImage))
            : r.MaskImage is { } m && (m.Width != width || m.Height != height) ? (m, nameof(r.MaskImage)) : (null, "");
        if (image is null) return null;
        var aspect = Math.Abs((double)image.Width / image.Height - (double)width / height) > 0.01 * width / height
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $" (its aspect ratio changed from {(double)image.Width / image.Height:0.##} to {(double)width / height:0.##})")
            : "";
        return $"The {name} ({image.Width}x{image.Height}) was resized to {width}x{height}{aspect} by Lanczos, as diffusers resizes it; " +
            "give a picture of the output size to have it used as it is.";
    }

    private static void CheckStrength(GenerationRequest r, Func<int, float, int>? stepsLeft)
    {
        var strength = r.EffectiveStrength;
        if (!float.IsFinite(strength) || strength <= 0 || strength > 1)
            throw new InvalidRequestException(nameof(r.Strength), strength, null, called => $"{called} must be in (0, 1].");
        if (stepsLeft is not null)
        {
            if (stepsLeft(r.StepCount, strength) < 1)
                throw new InvalidRequestException(nameof(r.Strength), strength, null, called => $"{called} {strength} with {r.Steps} steps leaves no step to run; raise Steps or Strength.");
            return;
        }
        if (StrengthSchedule.BeginIndex(r.StepCount, strength, 1).InitSteps < 1)
            // The default strength is no value the caller gave: then the step count is what to change (or set Strength).
            throw r.Strength is null
                ? new InvalidRequestException(nameof(r.Steps), r.Steps, null, called => $"{called} {r.Steps} with the default Strength {strength} leaves no step to run (int(Steps·Strength) = 0); raise {called} or set Strength.")
                : new InvalidRequestException(nameof(r.Strength), strength, null, called => $"{called} {strength} with {r.Steps} steps leaves no step to run (int(Steps·{called}) = 0); raise Steps or Strength.");
    }

    // The base → refiner hand-off fields (whether a split leaves steps is checked once the timesteps are known).
    private static void CheckSchedulePart(GenerationRequest r)
    {
        if (r.DenoisingEnd is { } end && !(float.IsFinite(end) && end is > 0 and < 1))
            throw new InvalidRequestException(nameof(r.DenoisingEnd), end, null, called => $"{called} must be a fraction of the schedule strictly between 0 and 1 (e.g. 0.8).");
        if (r.DenoisingStart is { } start)
        {
            if (!(float.IsFinite(start) && start is > 0 and < 1))
                throw new InvalidRequestException(nameof(r.DenoisingStart), start, null, called => $"{called} must be a fraction of the schedule strictly between 0 and 1 (e.g. 0.8).");
            if (r.InitLatents is null)
                throw new InvalidRequestException(r.InitImage is null ? nameof(r.InitLatents) : nameof(r.DenoisingStart), start, null,
                    called => $"{called}: DenoisingStart continues from InitLatents (a base model's latents stopped at DenoisingEnd); with an InitImage use Strength.");
            if (r.DenoisingEnd is { } e && start >= e)
                throw new InvalidRequestException(nameof(r.DenoisingStart), start, null, called => $"{called} ({start}) must be below DenoisingEnd ({e}).");
        }
        if (r.InitLatents is { } latents)
        {
            if (r.InitialLatents is not null)
                throw new InvalidRequestException(nameof(r.InitialLatents), null, null, called => $"{called} and InitLatents cannot be used together: {called} is the noise of a text-to-image run, InitLatents the latents to continue from.");
            if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(latents))
                throw new InvalidRequestException(nameof(r.InitLatents), null, null, called => $"{called} contains NaN or infinity.");
        }
    }
}
