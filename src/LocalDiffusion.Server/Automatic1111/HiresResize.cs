using LocalDiffusion.Imaging;
using SkiaSharp;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// The resizes of A1111's hires fix: latents by torch's <c>interpolate</c> (align_corners false) for the "Latent" upscalers,
/// pictures by Lanczos (PIL's, which A1111's "None" and "Lanczos" use) or nearest neighbour for the image upscalers.
/// </summary>
internal static class HiresResize
{
    /// <summary>How a "Latent" upscaler interpolates.</summary>
    public enum LatentMode { Bilinear, Bicubic, BicubicAntialiased, Nearest, NearestExact }

    /// <summary>A1111's latent upscale modes (shared.latent_upscale_modes), by the name clients send as hr_upscaler.</summary>
    public static readonly IReadOnlyDictionary<string, LatentMode> LatentModes = new Dictionary<string, LatentMode>(StringComparer.Ordinal)
    {
        // Antialiasing only changes a shrink, except bicubic's, whose antialiased kernel is PIL's (a = −0.5, not −0.75).
        ["Latent"] = LatentMode.Bilinear,
        ["Latent (antialiased)"] = LatentMode.Bilinear,
        ["Latent (bicubic)"] = LatentMode.Bicubic,
        ["Latent (bicubic antialiased)"] = LatentMode.BicubicAntialiased,
        ["Latent (nearest)"] = LatentMode.Nearest,
        ["Latent (nearest-exact)"] = LatentMode.NearestExact,
    };

    /// <summary>Resizes [channels,h,w] latents (one image's) to [channels,toH,toW].</summary>
    public static float[] Latents(ReadOnlySpan<float> latents, int channels, int h, int w, int toH, int toW, LatentMode mode)
    {
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

    /// <summary>A1111's image upscalers: "None" and "Lanczos" resize by Lanczos, "Nearest" by nearest neighbour.</summary>
    public static InitImage Picture(GeneratedImage image, int width, int height, bool nearest)
    {
        if (nearest)
        {
            using var source = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
            var pixels = source.GetPixelSpan();
            for (int i = 0, j = 0; j < image.Rgb.Length; i += 4, j += 3)
                (pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]) = (image.Rgb[j], image.Rgb[j + 1], image.Rgb[j + 2], 255);
            using var resized = source.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque), new SKSamplingOptions(SKFilterMode.Nearest))
                ?? throw new InvalidOperationException($"SkiaSharp could not resize {image.Width}x{image.Height} to {width}x{height}.");
            var rgba = resized.GetPixelSpan();
            var rgb = new byte[width * height * 3];
            for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
                (rgb[j], rgb[j + 1], rgb[j + 2]) = (rgba[i], rgba[i + 1], rgba[i + 2]);
            return new InitImage(width, height, rgb);
        }
        // SkiaSharp has no Lanczos sampler, so PIL's separable Lanczos-3 is done here.
        var rows = Lanczos(image.Height, height);
        var cols = Lanczos(image.Width, width);
        var output = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
                for (var k = 0; k < 3; k++)
                {
                    var sum = 0f;
                    foreach (var (sy, wy) in rows[y])
                        foreach (var (sx, wx) in cols[x])
                            sum += wy * wx * image.Rgb[(sy * image.Width + sx) * 3 + k];
                    output[(y * width + x) * 3 + k] = (byte)Math.Clamp(MathF.Round(sum), 0, 255);
                }
        return new InitImage(width, height, output);
    }

    // Source taps and weights for each output index along one axis, as torch computes them for an enlargement.
    private static (int Index, float Weight)[][] Weights(int from, int to, LatentMode mode)
    {
        var scale = (double)from / to;
        var taps = new (int, float)[to][];
        for (var i = 0; i < to; i++)
        {
            var centre = (i + 0.5) * scale - 0.5;
            taps[i] = mode switch
            {
                LatentMode.Nearest => [(Math.Min((int)Math.Floor(i * scale), from - 1), 1f)],
                LatentMode.NearestExact => [(Math.Min((int)Math.Floor((i + 0.5) * scale), from - 1), 1f)],
                LatentMode.Bilinear => Linear(Math.Max(centre, 0), from),
                _ => Cubic(centre, from, mode == LatentMode.Bicubic ? -0.75 : -0.5),
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

    // PIL's Lanczos-3 taps: support widened by the scale when shrinking, weights normalised.
    private static (int Index, float Weight)[][] Lanczos(int from, int to)
    {
        var scale = (double)from / to;
        var filterScale = Math.Max(scale, 1);
        var support = 3 * filterScale;
        var taps = new (int, float)[to][];
        for (var i = 0; i < to; i++)
        {
            var centre = (i + 0.5) * scale;
            var min = Math.Max((int)(centre - support + 0.5), 0);
            var max = Math.Min((int)(centre + support + 0.5), from);
            var list = new List<(int, float)>();
            var total = 0.0;
            for (var j = min; j < max; j++)
            {
                var weight = Sinc3((j - centre + 0.5) / filterScale);
                list.Add((j, (float)weight));
                total += weight;
            }
            taps[i] = total == 0 ? list.ToArray() : list.Select(p => (p.Item1, (float)(p.Item2 / total))).ToArray();
        }
        return taps;
    }

    private static double Sinc3(double x)
    {
        if (Math.Abs(x) >= 3) return 0;
        if (x == 0) return 1;
        var px = Math.PI * x;
        return 3 * Math.Sin(px) * Math.Sin(px / 3) / (px * px);
    }
}
