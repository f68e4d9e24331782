using LocalDiffusion.Latents;

namespace LocalDiffusion;

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
            throw new ArgumentException(
                "This model's UNet is a 9-channel inpainting UNet: it needs InitImage and MaskImage (white = repaint).", nameof(r.MaskImage));
        if (r.Eta is { } eta && (!float.IsFinite(eta) || eta < 0))
            throw new ArgumentOutOfRangeException(nameof(r.Eta), eta, "Eta must be a finite number ≥ 0.");
        CheckSchedulePart(r);
        if (r.InitImage is null)
        {
            if (r.MaskImage is not null)
                throw new ArgumentException("MaskImage needs an InitImage: the picture to inpaint.", nameof(r.MaskImage));
            if (r.InitLatents is not null && r.DenoisingStart is null) CheckStrength(r, stepsLeft);
            return;
        }
        if (r.InitLatents is not null)
            throw new ArgumentException("InitLatents and InitImage cannot be used together: each makes the starting latents.", nameof(r.InitLatents));
        if (vaeEncoderPath is null)
            throw new ArgumentException("InitImage needs the model's VAE encoder (vae_encoder/model.onnx), which this model folder does not have.", nameof(r.InitImage));
        if (r.InitialLatents is not null)
            throw new ArgumentException("InitialLatents and InitImage cannot be used together: the init image makes the starting latents.", nameof(r.InitialLatents));
        CheckStrength(r, stepsLeft);
        if (!float.IsFinite(r.MaskBlur) || r.MaskBlur < 0 || r.MaskBlur > 64)
            throw new ArgumentOutOfRangeException(nameof(r.MaskBlur), r.MaskBlur, "MaskBlur must be between 0 and 64 pixels.");
    }

    private static void CheckStrength(GenerationRequest r, Func<int, float, int>? stepsLeft)
    {
        var strength = r.EffectiveStrength;
        if (!float.IsFinite(strength) || strength <= 0 || strength > 1)
            throw new ArgumentOutOfRangeException(nameof(r.Strength), strength, "Strength must be in (0, 1].");
        if (stepsLeft is not null)
        {
            if (stepsLeft(r.StepCount, strength) < 1)
                throw new ArgumentOutOfRangeException(nameof(r.Strength), strength, $"Strength {strength} with {r.Steps} steps leaves no step to run; raise Steps or Strength.");
            return;
        }
        if (LatentPreparation.BeginIndex(r.StepCount, strength, 1).InitSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(r.Strength), strength,
                $"Strength {strength} with {r.Steps} steps leaves no step to run (int(Steps·Strength) = 0); raise Steps or Strength.");
    }

    // The base → refiner hand-off fields (whether a split leaves steps is checked once the timesteps are known).
    private static void CheckSchedulePart(GenerationRequest r)
    {
        if (r.DenoisingEnd is { } end && !(float.IsFinite(end) && end is > 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(r.DenoisingEnd), end, "DenoisingEnd must be a fraction of the schedule strictly between 0 and 1 (e.g. 0.8).");
        if (r.DenoisingStart is { } start)
        {
            if (!(float.IsFinite(start) && start is > 0 and < 1))
                throw new ArgumentOutOfRangeException(nameof(r.DenoisingStart), start, "DenoisingStart must be a fraction of the schedule strictly between 0 and 1 (e.g. 0.8).");
            if (r.InitLatents is null)
                throw new ArgumentException("DenoisingStart continues from InitLatents (a base model's latents stopped at DenoisingEnd); with an InitImage use Strength.",
                    r.InitImage is null ? nameof(r.InitLatents) : nameof(r.DenoisingStart));
            if (r.DenoisingEnd is { } e && start >= e)
                throw new ArgumentOutOfRangeException(nameof(r.DenoisingStart), start, $"DenoisingStart ({start}) must be below DenoisingEnd ({e}).");
        }
        if (r.InitLatents is { } latents)
        {
            if (r.InitialLatents is not null)
                throw new ArgumentException("InitialLatents and InitLatents cannot be used together: InitialLatents is the noise of a text-to-image run, InitLatents the latents to continue from.", nameof(r.InitialLatents));
            if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(latents))
                throw new ArgumentException("InitLatents contains NaN or infinity.", nameof(r.InitLatents));
        }
    }
}
