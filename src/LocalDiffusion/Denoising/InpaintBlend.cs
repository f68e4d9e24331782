using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Denoising;

/// <summary>
/// Inpainting with an ordinary 4-channel UNet (diffusers' <c>StableDiffusionInpaintPipeline</c> for such UNets, and
/// AUTOMATIC1111's latent mask): after every step the kept region (mask 0) of the latents is replaced by the init image's
/// latents noised to the next timestep with the generation's initial noise — clean after the last step — so only the
/// masked region (mask 1) is generated: latents = (1 − m)·proper + m·latents.
/// </summary>
internal sealed class InpaintBlend(float[] imageLatents, float[] noise, float[] latentMask, IScheduler scheduler)
{
    private readonly float[] _proper = new float[imageLatents.Length];

    /// <summary>The latent mask [h·w], 1 = repaint, shared by every channel and image.</summary>
    public IReadOnlyList<float> Mask => latentMask;

    /// <summary>Blends after the step of evaluation <paramref name="stepIndex"/> (global index in the scheduler's run).</summary>
    public void AfterStep(int stepIndex, Span<float> latents)
    {
        ReadOnlySpan<float> proper = imageLatents;
        if (stepIndex < scheduler.Timesteps.Count - 1)
        {
            scheduler.AddNoise(imageLatents, noise, stepIndex + 1, _proper);
            proper = _proper;
        }
        var plane = latentMask.Length;
        for (var k = 0; k < latents.Length; k++)
        {
            var m = latentMask[k % plane];
            latents[k] = (1 - m) * proper[k] + m * latents[k];
        }
    }
}
