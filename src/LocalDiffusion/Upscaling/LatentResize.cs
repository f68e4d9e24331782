using LocalDiffusion.Errors;

namespace LocalDiffusion.Upscaling;

/// <summary>Enlarges latents as torch's <c>F.interpolate(..., align_corners=False)</c> does, for the hires fix's "Latent" upscalers.</summary>
public static class LatentResize
{
    /// <summary>A1111's latent upscale modes (shared.latent_upscale_modes), by the name clients send as hr_upscaler.</summary>
    public static IReadOnlyDictionary<string, LatentUpscaleMode> Modes { get; } = new Dictionary<string, LatentUpscaleMode>(StringComparer.Ordinal)
    {
        ["Latent"] = LatentUpscaleMode.Bilinear,
        ["Latent (antialiased)"] = LatentUpscaleMode.Bilinear,
        ["Latent (bicubic)"] = LatentUpscaleMode.Bicubic,
        ["Latent (bicubic antialiased)"] = LatentUpscaleMode.BicubicAntialiased,
        ["Latent (nearest)"] = LatentUpscaleMode.Nearest,
        ["Latent (nearest-exact)"] = LatentUpscaleMode.NearestExact,
    };

    /// <summary>Resizes one image's latents [channels,h,w] to [channels,toH,toW].</summary>
    /// <exception cref="ArgumentException">A size is not positive or the span does not fit it.</exception>
    public static float[] Resize(ReadOnlySpan<float> latents, int channels, int h, int w, int toH, int toW, LatentUpscaleMode mode)
    {
        if (channels <= 0 || h <= 0 || w <= 0 || toH <= 0 || toW <= 0 || latents.Length != channels * h * w)
            throw new InvalidRequestException(nameof(latents), null, null, $"Latent resize: {latents.Length} values for [{channels},{h},{w}] to [{channels},{toH},{toW}]; sizes must be positive and fit.");
        var rows = Weights(h, toH, mode);
        var cols = Weights(w, toW, mode);
        var result = new float[channels * toH * toW];
        for (var c = 0; c < channels; c++)
        {
            var plane = latents.Slice(c * h * w, h * w);
            for (var y = 0; y < toH; y++)
                for (var x = 0; x < toW; x++)
                {
                    var sum = 0f;
                    foreach (var (sy, wy) in rows[y])
                        foreach (var (sx, wx) in cols[x])
                            sum += wy * wx * plane[sy * w + sx];
                    result[(c * toH + y) * toW + x] = sum;
                }
        }
        return result;
    }

    // Source taps and weights for each output index along one axis, as torch computes them for an enlargement.
    private static (int Index, float Weight)[][] Weights(int from, int to, LatentUpscaleMode mode)
    {
        var scale = (double)from / to;
        var taps = new (int, float)[to][];
        for (var i = 0; i < to; i++)
        {
            var centre = (i + 0.5) * scale - 0.5;
            taps[i] = mode switch
            {
                LatentUpscaleMode.Nearest => [(Math.Min((int)Math.Floor(i * scale), from - 1), 1f)],
                LatentUpscaleMode.NearestExact => [(Math.Min((int)Math.Floor((i + 0.5) * scale), from - 1), 1f)],
                LatentUpscaleMode.Bilinear => Linear(Math.Max(centre, 0), from),
                LatentUpscaleMode.Bicubic => Cubic(centre, from, -0.75),
                _ => AntialiasedCubic((i + 0.5) * scale, from),
            };
        }
        return taps;
    }

    private static (int, float)[] Linear(double at, int size)
    {
        var i0 = (int)Math.Floor(at);
        var t = (float)(at - i0);
        return [(Math.Min(i0, size - 1), 1 - t), (Math.Min(i0 + 1, size - 1), t)];
    }

    // torch's antialiased kernel (PIL's bicubic, a = −0.5): a window of ±2 source pixels around the centre, cut at the
    // border and its weights renormalised (where the plain bicubic repeats the edge pixel instead).
    private static (int, float)[] AntialiasedCubic(double centre, int size)
    {
        var min = Math.Max((int)(centre - 2 + 0.5), 0);
        var max = Math.Min((int)(centre + 2 + 0.5), size);
        var taps = new (int, float)[max - min];
        var total = 0.0;
        var weights = new double[taps.Length];
        for (var j = min; j < max; j++)
            total += weights[j - min] = Keys(Math.Abs(j - centre + 0.5), -0.5);
        for (var j = min; j < max; j++)
            taps[j - min] = (j, (float)(weights[j - min] / total));
        return taps;
    }

    private static double Keys(double d, double a) => d <= 1 ? ((a + 2) * d - (a + 3)) * d * d + 1 : d < 2 ? ((d - 5) * d + 8) * d * a - 4 * a : 0;

    // Keys' cubic convolution; torch clamps the taps at the border.
    private static (int, float)[] Cubic(double at, int size, double a)
    {
        var i0 = (int)Math.Floor(at);
        var t = at - i0;
        var taps = new (int, float)[4];
        for (var k = -1; k <= 2; k++)
        {
            var d = Math.Abs(t - k);
            var weight = d <= 1 ? ((a + 2) * d - (a + 3)) * d * d + 1 : d < 2 ? ((d - 5) * d + 8) * d * a - 4 * a : 0;
            taps[k + 1] = (Math.Clamp(i0 + k, 0, size - 1), (float)weight);
        }
        return taps;
    }
}
