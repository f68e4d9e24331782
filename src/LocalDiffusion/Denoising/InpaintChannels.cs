namespace LocalDiffusion.Denoising;

/// <summary>
/// The extra input of a 9-channel inpainting UNet (diffusers' <c>StableDiffusionInpaintPipeline</c>): after the
/// scheduler-scaled latents, the latent mask (1 channel, 1 = repaint) and the masked image's latents (4 channels, the
/// picture with the repainted region set to 0 in [−1, 1], encoded and scaled), the same for every row of the batch.
/// </summary>
internal sealed class InpaintChannels(float[] latentMask, float[] maskedImageLatents)
{
    /// <summary>Writes each row of <paramref name="input"/> as [scaled row ‖ mask ‖ masked-image latents].</summary>
    public void Assemble(ReadOnlySpan<float> scaled, Span<float> input, int batch)
    {
        var plane = latentMask.Length;
        var latentItem = UNet.LatentChannels * plane;
        var inputItem = UNet.InpaintingChannels * plane;
        for (var b = 0; b < batch; b++)
        {
            var row = input.Slice(b * inputItem, inputItem);
            scaled.Slice(b * latentItem, latentItem).CopyTo(row);
            latentMask.CopyTo(row.Slice(latentItem, plane));
            maskedImageLatents.CopyTo(row[(latentItem + plane)..]);
        }
    }
}
