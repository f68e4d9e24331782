using LocalDiffusion.Imaging;
using LocalDiffusion.Vae;

namespace LocalDiffusion.Latents;

/// <summary>
/// The inpainting mask at latent resolution (1 = repaint). Without blur it is diffusers' rule: luminance binarised at
/// 0.5, then nearest-neighbour down to h×w (<c>F.interpolate</c>: latent (i, j) takes pixel (8i, 8j)). With a blur
/// radius σ &gt; 0 the luminance is Gaussian-blurred (σ in pixels) and each latent takes its 8×8 block's mean, a soft
/// edge as AUTOMATIC1111's mask blur gives.
/// </summary>
internal static class InpaintMask
{
    /// <summary>The mask at pixel resolution for the paste-back: binarised at 0.5, or blurred (soft) when <paramref name="blur"/> &gt; 0.</summary>
    public static float[] ToPixels(InitImage mask, float blur)
    {
        var gray = mask.ToGray();
        if (blur > 0)
            return Blur(gray, mask.Width, mask.Height, blur);
        for (var p = 0; p < gray.Length; p++)
            gray[p] = gray[p] >= 0.5f ? 1f : 0f;
        return gray;
    }

    public static float[] ToLatent(InitImage mask, int latentHeight, int latentWidth, float blur)
    {
        int width = mask.Width, height = mask.Height, f = VaeDecoder.Factor;
        var gray = mask.ToGray();
        var latent = new float[latentHeight * latentWidth];
        if (blur <= 0)
        {
            for (var i = 0; i < latentHeight; i++)
                for (var j = 0; j < latentWidth; j++)
                    latent[i * latentWidth + j] = gray[i * f * width + j * f] >= 0.5f ? 1f : 0f;
            return latent;
        }

        var blurred = Blur(gray, width, height, blur);
        for (var i = 0; i < latentHeight; i++)
            for (var j = 0; j < latentWidth; j++)
            {
                var sum = 0f;
                for (var y = 0; y < f; y++)
                    for (var x = 0; x < f; x++)
                        sum += blurred[(i * f + y) * width + j * f + x];
                latent[i * latentWidth + j] = Math.Clamp(sum / (f * f), 0f, 1f);
            }
        return latent;
    }

    /// <summary>Separable Gaussian blur with edge clamping, kernel radius 3σ.</summary>
    private static float[] Blur(float[] source, int width, int height, float sigma)
    {
        var radius = Math.Max(1, (int)MathF.Ceiling(3 * sigma));
        var kernel = new float[2 * radius + 1];
        var total = 0f;
        for (var k = -radius; k <= radius; k++)
            total += kernel[k + radius] = MathF.Exp(-k * k / (2 * sigma * sigma));
        for (var k = 0; k < kernel.Length; k++)
            kernel[k] /= total;

        var horizontal = new float[source.Length];
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var sum = 0f;
                for (var k = -radius; k <= radius; k++)
                    sum += kernel[k + radius] * source[y * width + Math.Clamp(x + k, 0, width - 1)];
                horizontal[y * width + x] = sum;
            }
        var result = new float[source.Length];
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var sum = 0f;
                for (var k = -radius; k <= radius; k++)
                    sum += kernel[k + radius] * horizontal[Math.Clamp(y + k, 0, height - 1) * width + x];
                result[y * width + x] = sum;
            }
        return result;
    }
}
