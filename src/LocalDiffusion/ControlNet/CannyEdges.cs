using LocalDiffusion.Imaging;
using LocalDiffusion.Errors;

namespace LocalDiffusion.ControlNet;

/// <summary>
/// Canny edge detection, the "canny" preprocessor of A1111's ControlNet extension (which calls OpenCV's
/// <c>cv2.Canny(image, low, high)</c> with 100/200): an optional Gaussian blur, 3×3 Sobel gradients per colour channel with
/// the border replicated, per pixel the channel of largest L1 magnitude |gx| + |gy| (OpenCV's default norm), non-maximum
/// suppression across the gradient direction in four sectors (22.5° boundaries, as OpenCV), and hysteresis: pixels above
/// the high threshold are edges, and so is every pixel above the low threshold 8-connected to one. Magnitudes are on the
/// 0–255 scale of the pixels, so the thresholds mean what they mean in OpenCV. The result is white edges on black.
/// OpenCV's Canny does not blur; <c>blurSigma</c> 0 (the default) matches it, a sigma of 1–1.4 quiets noisy photos.
/// </summary>
public static class CannyEdges
{
    /// <summary>A1111's default low threshold.</summary>
    public const float DefaultLowThreshold = ControlNetUnit.DefaultCannyLowThreshold;

    /// <summary>A1111's default high threshold.</summary>
    public const float DefaultHighThreshold = ControlNetUnit.DefaultCannyHighThreshold;

    // tan 22.5° and tan 67.5°: the sector boundaries of the gradient direction.
    private const float Tan22 = 0.41421356f;
    private const float Tan67 = 2.41421356f;

    /// <summary>The edge picture of <paramref name="image"/> (same size; 255 on edges, 0 elsewhere, all channels).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A threshold is negative or not finite, low exceeds high, or the sigma is out of 0–10.</exception>
    public static InitImage Detect(InitImage image, float lowThreshold = DefaultLowThreshold, float highThreshold = DefaultHighThreshold, float blurSigma = 0f)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (!float.IsFinite(lowThreshold) || lowThreshold < 0)
            throw new InvalidRequestException(nameof(lowThreshold), lowThreshold, null, _ => "The low Canny threshold must be a finite number ≥ 0 (A1111's default 100).");
        if (!float.IsFinite(highThreshold) || highThreshold < lowThreshold)
            throw new InvalidRequestException(nameof(highThreshold), highThreshold, null, _ => $"The high Canny threshold must be ≥ the low one ({lowThreshold}); A1111's default is 200.");
        if (!float.IsFinite(blurSigma) || blurSigma is < 0 or > 10)
            throw new InvalidRequestException(nameof(blurSigma), blurSigma, null, _ => "The blur sigma must be between 0 (no blur, as OpenCV's Canny) and 10.");
        int w = image.Width, h = image.Height;
        var channels = new float[3][];
        for (var c = 0; c < 3; c++)
        {
            var plane = new float[w * h];
            for (var p = 0; p < plane.Length; p++) plane[p] = image.Rgb[3 * p + c];
            channels[c] = blurSigma > 0 ? GaussianBlur(plane, w, h, blurSigma) : plane;
        }
        var (magnitude, gx, gy) = Gradients(channels, w, h);
        var candidate = Suppress(magnitude, gx, gy, w, h, lowThreshold);
        var edges = Hysteresis(candidate, magnitude, w, h, highThreshold);
        var rgb = new byte[w * h * 3];
        for (var p = 0; p < edges.Length; p++)
            if (edges[p]) rgb.AsSpan(3 * p, 3).Fill(255);
        return new InitImage(w, h, rgb);
    }

    // A separable, normalised Gaussian of radius ⌈3σ⌉ with the border replicated.
    private static float[] GaussianBlur(float[] plane, int w, int h, float sigma)
    {
        var radius = (int)MathF.Ceiling(3 * sigma);
        var kernel = new float[2 * radius + 1];
        var sum = 0f;
        for (var i = -radius; i <= radius; i++) sum += kernel[i + radius] = MathF.Exp(-i * i / (2 * sigma * sigma));
        for (var i = 0; i < kernel.Length; i++) kernel[i] /= sum;
        var across = new float[plane.Length];
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var v = 0f;
                for (var i = -radius; i <= radius; i++) v += kernel[i + radius] * plane[y * w + Math.Clamp(x + i, 0, w - 1)];
                across[y * w + x] = v;
            }
        var result = new float[plane.Length];
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var v = 0f;
                for (var i = -radius; i <= radius; i++) v += kernel[i + radius] * across[Math.Clamp(y + i, 0, h - 1) * w + x];
                result[y * w + x] = v;
            }
        return result;
    }

    // 3×3 Sobel per channel (border replicated); per pixel the channel with the largest |gx| + |gy| (the first on ties).
    private static (float[] Magnitude, float[] Gx, float[] Gy) Gradients(float[][] channels, int w, int h)
    {
        var magnitude = new float[w * h];
        var gxOut = new float[w * h];
        var gyOut = new float[w * h];
        for (var y = 0; y < h; y++)
        {
            int ym = Math.Max(y - 1, 0), yp = Math.Min(y + 1, h - 1);
            for (var x = 0; x < w; x++)
            {
                int xm = Math.Max(x - 1, 0), xp = Math.Min(x + 1, w - 1);
                var best = -1f;
                foreach (var p in channels)
                {
                    var gx = p[ym * w + xp] - p[ym * w + xm] + 2 * (p[y * w + xp] - p[y * w + xm]) + p[yp * w + xp] - p[yp * w + xm];
                    var gy = p[yp * w + xm] - p[ym * w + xm] + 2 * (p[yp * w + x] - p[ym * w + x]) + p[yp * w + xp] - p[ym * w + xp];
                    var m = MathF.Abs(gx) + MathF.Abs(gy);
                    if (m > best)
                    {
                        best = m;
                        gxOut[y * w + x] = gx;
                        gyOut[y * w + x] = gy;
                    }
                }
                magnitude[y * w + x] = best;
            }
        }
        return (magnitude, gxOut, gyOut);
    }

    // Non-maximum suppression: a pixel above the low threshold stays a candidate if it beats both neighbours across its
    // gradient — strictly the one before (left, above), or equal to the one after, as OpenCV breaks plateaus; diagonals
    // strictly on both sides. Neighbours outside the picture count as 0.
    private static bool[] Suppress(float[] m, float[] gx, float[] gy, int w, int h, float low)
    {
        float At(int x, int y) => x < 0 || y < 0 || x >= w || y >= h ? 0f : m[y * w + x];
        var candidate = new bool[w * h];
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var i = y * w + x;
                var v = m[i];
                if (v <= low) continue;
                float ax = MathF.Abs(gx[i]), ay = MathF.Abs(gy[i]);
                bool keep;
                if (ay < ax * Tan22)
                    keep = v > At(x - 1, y) && v >= At(x + 1, y);
                else if (ay > ax * Tan67)
                    keep = v > At(x, y - 1) && v >= At(x, y + 1);
                else
                {
                    var s = (gx[i] < 0) != (gy[i] < 0) ? -1 : 1; // same signs: the ↘ diagonal; opposite: ↗
                    keep = v > At(x - s, y - 1) && v > At(x + s, y + 1);
                }
                candidate[i] = keep;
            }
        return candidate;
    }

    // Edges: candidates above the high threshold, and candidates 8-connected to them through candidates.
    private static bool[] Hysteresis(bool[] candidate, float[] m, int w, int h, float high)
    {
        var edge = new bool[w * h];
        var stack = new Stack<int>();
        for (var i = 0; i < edge.Length; i++)
        {
            if (!candidate[i] || m[i] <= high || edge[i]) continue;
            edge[i] = true;
            stack.Push(i);
            while (stack.Count > 0)
            {
                var p = stack.Pop();
                int px = p % w, py = p / w;
                for (var dy = -1; dy <= 1; dy++)
                    for (var dx = -1; dx <= 1; dx++)
                    {
                        int nx = px + dx, ny = py + dy;
                        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
                        var n = ny * w + nx;
                        if (candidate[n] && !edge[n])
                        {
                            edge[n] = true;
                            stack.Push(n);
                        }
                    }
            }
        }
        return edge;
    }
}
