namespace LocalDiffusion.Imaging;

/// <summary>
/// Inpainting's final paste-back, as AUTOMATIC1111 overlays the original: kept pixels (mask 0) come from the init
/// image, repainted ones (mask 1) from the decoded result, soft edges mixed by the (blurred) mask. Needed because the
/// VAE decoder sees the whole latent picture: the kept half of a decoded result moves by more than the VAE round trip
/// when the other half changes (measured on the shapes model in ShapesImageToImageTests).
/// </summary>
internal static class InpaintComposite
{
    /// <summary>Blends <paramref name="generated"/> in place with <paramref name="original"/> by the per-pixel mask.</summary>
    public static void Apply(byte[] generated, InitImage original, float[] pixelMask)
    {
        for (var p = 0; p < pixelMask.Length; p++)
        {
            var m = pixelMask[p];
            for (var c = 0; c < 3; c++)
            {
                var k = 3 * p + c;
                generated[k] = (byte)Math.Clamp(MathF.Round(m * generated[k] + (1 - m) * original.Rgb[k]), 0, 255);
            }
        }
    }
}
