using LocalDiffusion.Latents;

namespace LocalDiffusion;

/// <summary>The up-front checks of a request's eta, init image, strength and mask, each naming the field.</summary>
internal static class ImageRequestValidation
{
    public static void Check(GenerationRequest r, string? vaeEncoderPath, bool inpaintingUnet)
    {
        if (inpaintingUnet && r.MaskImage is null)
            throw new ArgumentException(
                "This model's UNet is a 9-channel inpainting UNet: it needs InitImage and MaskImage (white = repaint).", nameof(r.MaskImage));
        if (r.Eta is { } eta && (!float.IsFinite(eta) || eta < 0))
            throw new ArgumentOutOfRangeException(nameof(r.Eta), eta, "Eta must be a finite number ≥ 0.");
        if (r.InitImage is null)
        {
            if (r.MaskImage is not null)
                throw new ArgumentException("MaskImage needs an InitImage: the picture to inpaint.", nameof(r.MaskImage));
            return;
        }
        if (vaeEncoderPath is null)
            throw new ArgumentException("InitImage needs the model's VAE encoder (vae_encoder/model.onnx), which this model folder does not have.", nameof(r.InitImage));
        if (r.InitialLatents is not null)
            throw new ArgumentException("InitialLatents and InitImage cannot be used together: the init image makes the starting latents.", nameof(r.InitialLatents));
        var strength = r.EffectiveStrength;
        if (!float.IsFinite(strength) || strength <= 0 || strength > 1)
            throw new ArgumentOutOfRangeException(nameof(r.Strength), strength, "Strength must be in (0, 1].");
        if (LatentPreparation.BeginIndex(r.Steps, strength, 1).InitSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(r.Strength), strength,
                $"Strength {strength} with {r.Steps} steps leaves no step to run (int(Steps·Strength) = 0); raise Steps or Strength.");
        if (!float.IsFinite(r.MaskBlur) || r.MaskBlur < 0 || r.MaskBlur > 64)
            throw new ArgumentOutOfRangeException(nameof(r.MaskBlur), r.MaskBlur, "MaskBlur must be between 0 and 64 pixels.");
    }
}
