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
}
