using LocalDiffusion.Errors;

namespace LocalDiffusion.Imaging;

/// <summary>
/// Pillow's <c>Image.resize(size, Image.NEAREST)</c>: output pixel x reads source pixel ⌊(x + ½)·from/to⌋ on each axis
/// (the pixel whose area holds the output pixel's centre), what A1111's "Nearest" upscaler uses.
/// </summary>
public static class NearestResampler
{
    /// <summary>Resizes row-major interleaved 8-bit pixels with <paramref name="channels"/> bytes per pixel.</summary>
    /// <exception cref="ArgumentException">A size is not positive or the buffer does not fit it.</exception>
    public static byte[] Resize(ReadOnlySpan<byte> pixels, int width, int height, int channels, int toWidth, int toHeight)
    {
        if (width <= 0 || height <= 0 || toWidth <= 0 || toHeight <= 0 || channels is < 1 or > 4)
            throw new InvalidRequestException("toWidth", $"{toWidth}x{toHeight}", "positive sizes and 1 to 4 channels", $"Nearest resize from {width}x{height} to {toWidth}x{toHeight} with {channels} channels: sizes must be positive and channels 1 to 4.");
        if (pixels.Length != (long)width * height * channels)
            throw new InvalidRequestException(nameof(pixels), null, null, $"Nearest resize: {pixels.Length} bytes do not fit {width}x{height}x{channels}.");
        var columns = new int[toWidth];
        for (var x = 0; x < toWidth; x++)
            columns[x] = Math.Min((int)((x + 0.5) * width / toWidth), width - 1);
        var result = new byte[toWidth * toHeight * channels];
        for (var y = 0; y < toHeight; y++)
        {
            var sourceRow = pixels.Slice(Math.Min((int)((y + 0.5) * height / toHeight), height - 1) * width * channels, width * channels);
            var targetRow = result.AsSpan(y * toWidth * channels, toWidth * channels);
            for (var x = 0; x < toWidth; x++)
                sourceRow.Slice(columns[x] * channels, channels).CopyTo(targetRow.Slice(x * channels, channels));
        }
        return result;
    }
}
