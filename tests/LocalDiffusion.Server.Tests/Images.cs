using SkiaSharp;

namespace LocalDiffusion.Server.Tests;

/// <summary>Decodes image bytes the tests receive.</summary>
internal static class Images
{
    public static (int Width, int Height, byte[] Rgb) Decode(byte[] bytes)
    {
        using var bitmap = SKBitmap.Decode(bytes) ?? throw new InvalidDataException($"{bytes.Length} bytes that are not a readable image.");
        var rgb = new byte[bitmap.Width * bitmap.Height * 3];
        for (var y = 0; y < bitmap.Height; y++)
            for (var x = 0; x < bitmap.Width; x++)
            {
                var c = bitmap.GetPixel(x, y);
                var i = (y * bitmap.Width + x) * 3;
                rgb[i] = c.Red;
                rgb[i + 1] = c.Green;
                rgb[i + 2] = c.Blue;
            }
        return (bitmap.Width, bitmap.Height, rgb);
    }

    public static bool IsPng(byte[] bytes) => bytes.Length > 8 && bytes[0] == 0x89 && bytes[1] == (byte)'P' && bytes[2] == (byte)'N' && bytes[3] == (byte)'G';

    /// <summary>The text of the PNG's tEXt chunk called <paramref name="keyword"/>, or null.</summary>
    public static string? PngText(byte[] png, string keyword)
    {
        var at = 8;
        while (at + 8 <= png.Length)
        {
            var length = (png[at] << 24) | (png[at + 1] << 16) | (png[at + 2] << 8) | png[at + 3];
            var type = System.Text.Encoding.ASCII.GetString(png, at + 4, 4);
            if (type == "tEXt")
            {
                var data = png.AsSpan(at + 8, length);
                var zero = data.IndexOf((byte)0);
                if (zero > 0 && System.Text.Encoding.Latin1.GetString(data[..zero]) == keyword)
                    return System.Text.Encoding.Latin1.GetString(data[(zero + 1)..]);
            }
            at += 12 + length;
        }
        return null;
    }

    /// <summary>A PNG drawn pixel by pixel (RGBA, not premultiplied), e.g. an OpenAI mask whose alpha-0 pixels mark the edit.</summary>
    public static byte[] Png(int width, int height, Func<int, int, (byte R, byte G, byte B, byte A)> pixel)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var (r, g, b, a) = pixel(x, y);
                bitmap.SetPixel(x, y, new SKColor(r, g, b, a));
            }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>An opaque test picture: a red square on the right of a blue field, so a kept half can be recognised.</summary>
    public static byte[] Picture(int width, int height) =>
        Png(width, height, (x, y) => x >= width / 2 + 4 && x < width - 6 && y >= height / 4 && y < height * 3 / 4 ? ((byte)220, (byte)30, (byte)40, (byte)255) : ((byte)30, (byte)60, (byte)200, (byte)255));

    /// <summary>Mean |difference| per channel over the columns from <paramref name="fromColumn"/> up to <paramref name="toColumn"/> (exclusive; default the width).</summary>
    public static double MeanAbsolute(byte[] a, byte[] b, int width, int height, int fromColumn, int toColumn = -1)
    {
        if (toColumn < 0) toColumn = width;
        double sum = 0;
        var count = 0;
        for (var y = 0; y < height; y++)
            for (var x = fromColumn; x < toColumn; x++)
                for (var c = 0; c < 3; c++, count++)
                    sum += Math.Abs(a[(y * width + x) * 3 + c] - b[(y * width + x) * 3 + c]);
        return sum / count;
    }
}
