using LocalDiffusion.Errors;

namespace LocalDiffusion.Imaging;

/// <summary>
/// Pillow's <c>Image.resize(size, Image.LANCZOS)</c> for 8-bit pictures, pixel for pixel: a separable Lanczos-3 filter whose
/// support widens by the shrink factor, weights normalised and then fixed-point (22 fraction bits), a horizontal pass into
/// an 8-bit intermediate and then a vertical pass (an axis whose size does not change is not filtered). diffusers' image
/// processor and AUTOMATIC1111 resize with it, so matching it bit for bit keeps their pictures.
/// </summary>
public static class LanczosResampler
{
    // Pillow's PRECISION_BITS: 32 bits less 8 for the pixel and 2 for headroom.
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>
    /// Resizes row-major interleaved 8-bit pixels (<paramref name="channels"/> per pixel: 1 grey/alpha, 3 RGB, 4 RGBA —
    /// each channel filtered on its own, as Pillow does for RGB and L) from <paramref name="width"/>×<paramref name="height"/>
    /// to <paramref name="toWidth"/>×<paramref name="toHeight"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A size is not positive or the buffer does not fit it.</exception>
    public static byte[] Resize(ReadOnlySpan<byte> pixels, int width, int height, int channels, int toWidth, int toHeight)
    {
        if (width <= 0 || height <= 0 || toWidth <= 0 || toHeight <= 0 || channels is < 1 or > 4)
            throw new InvalidRequestException("toWidth", $"{toWidth}x{toHeight}", "positive sizes and 1 to 4 channels", $"Lanczos resize from {width}x{height} to {toWidth}x{toHeight} with {channels} channels: sizes must be positive and channels 1 to 4.");
        if (pixels.Length != (long)width * height * channels)
            throw new InvalidRequestException(nameof(pixels), null, null, $"Lanczos resize: {pixels.Length} bytes do not fit {width}x{height}x{channels}.");
        if (width == toWidth && height == toHeight)
            return pixels.ToArray();
        var vertical = Coefficients(height, toHeight);
        // Only the source rows some output row reads go through the horizontal pass (Pillow's ybox_first/ybox_last).
        var (firstRow, lastRow) = height == toHeight ? (0, height) : (vertical.Start[0], vertical.Start[toHeight - 1] + vertical.Count[toHeight - 1]);
        byte[] rows;
        if (width != toWidth)
        {
            rows = new byte[(lastRow - firstRow) * toWidth * channels];
            Horizontal(pixels.Slice(firstRow * width * channels, (lastRow - firstRow) * width * channels), width, channels, toWidth, Coefficients(width, toWidth), rows);
        }
        else
            rows = pixels.Slice(firstRow * width * channels, (lastRow - firstRow) * width * channels).ToArray();
        if (height == toHeight)
            return rows;
        var result = new byte[toWidth * toHeight * channels];
        Vertical(rows, toWidth * channels, firstRow, vertical, result);
        return result;
    }

    private static void Horizontal(ReadOnlySpan<byte> source, int width, int channels, int toWidth, Taps taps, byte[] target)
    {
        var rowCount = source.Length / (width * channels);
        for (var y = 0; y < rowCount; y++)
        {
            var row = source.Slice(y * width * channels, width * channels);
            for (var x = 0; x < toWidth; x++)
            {
                var weights = taps.Weights.AsSpan(x * taps.Size, taps.Count[x]);
                var start = taps.Start[x];
                for (var c = 0; c < channels; c++)
                {
                    var sum = 1 << (PrecisionBits - 1);
                    for (var k = 0; k < weights.Length; k++)
                        sum += row[(start + k) * channels + c] * weights[k];
                    target[(y * toWidth + x) * channels + c] = Clip(sum);
                }
            }
        }
    }

    private static void Vertical(byte[] source, int rowBytes, int firstRow, Taps taps, byte[] target)
    {
        var toHeight = taps.Start.Length;
        for (var y = 0; y < toHeight; y++)
        {
            var weights = taps.Weights.AsSpan(y * taps.Size, taps.Count[y]);
            var start = taps.Start[y] - firstRow;
            for (var i = 0; i < rowBytes; i++)
            {
                var sum = 1 << (PrecisionBits - 1);
                for (var k = 0; k < weights.Length; k++)
                    sum += source[(start + k) * rowBytes + i] * weights[k];
                target[y * rowBytes + i] = Clip(sum);
            }
        }
    }

    private static byte Clip(int sum) => sum <= 0 ? (byte)0 : sum >= 255 << PrecisionBits ? (byte)255 : (byte)(sum >> PrecisionBits);

    /// <summary>For each output index: the first source index, how many it reads, and their fixed-point weights.</summary>
    private sealed record Taps(int[] Start, int[] Count, int[] Weights, int Size);

    private static Taps Coefficients(int from, int to)
    {
        var scale = (double)from / to;
        var filterScale = Math.Max(scale, 1.0);
        var support = 3.0 * filterScale;
        var size = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[to];
        var count = new int[to];
        var weights = new int[to * size];
        var raw = new double[size];
        for (var i = 0; i < to; i++)
        {
            var centre = (i + 0.5) * scale;
            // Pillow rounds the window's ends by adding 0.5 and truncating towards zero.
            var min = Math.Max((int)(centre - support + 0.5), 0);
            var max = Math.Min((int)(centre + support + 0.5), from) - min;
            var total = 0.0;
            for (var k = 0; k < max; k++)
            {
                raw[k] = Lanczos3((k + min - centre + 0.5) / filterScale);
                total += raw[k];
            }
            for (var k = 0; k < max; k++)
            {
                var w = total != 0 ? raw[k] / total : raw[k];
                weights[i * size + k] = (int)(w < 0 ? -0.5 + w * (1 << PrecisionBits) : 0.5 + w * (1 << PrecisionBits));
            }
            (start[i], count[i]) = (min, max);
        }
        return new Taps(start, count, weights, size);
    }

    // sinc(x)·sinc(x/3) on [−3, 3), Pillow's half-open window.
    private static double Lanczos3(double x)
    {
        if (x < -3.0 || x >= 3.0) return 0;
        return Sinc(x) * Sinc(x / 3);
    }

    private static double Sinc(double x)
    {
        if (x == 0) return 1;
        x *= Math.PI;
        return Math.Sin(x) / x;
    }
}
