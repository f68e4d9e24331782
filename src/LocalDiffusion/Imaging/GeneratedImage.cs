using System.Runtime.InteropServices;
using SkiaSharp;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Imaging;

/// <summary>A generated picture as RGB8 pixels, with the parameters that made it.</summary>
public sealed class GeneratedImage
{
    /// <summary>Wraps <paramref name="rgb"/> (row-major RGB8, <paramref name="width"/>×<paramref name="height"/>×3 bytes).</summary>
    public GeneratedImage(int width, int height, byte[] rgb, string? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (width <= 0 || height <= 0 || rgb.Length != width * height * 3)
            throw new InvalidRequestException(nameof(rgb), null, null, $"RGB buffer of {rgb.Length} bytes does not fit {width}x{height}x3.");
        Width = width;
        Height = height;
        Rgb = rgb;
        Parameters = parameters;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Pixels, row-major RGB8 (Width × Height × 3 bytes).</summary>
    public byte[] Rgb { get; }

    /// <summary>Generation parameters in AUTOMATIC1111's <c>parameters</c> text form, when known.</summary>
    public string? Parameters { get; }

    /// <summary>
    /// Encodes the image as PNG. Without <paramref name="textChunks"/> the PNG carries <see cref="Parameters"/>
    /// as a <c>parameters</c> text chunk, which AUTOMATIC1111's "PNG Info" and similar tools read.
    /// </summary>
    public byte[] EncodePng(IReadOnlyDictionary<string, string>? textChunks = null)
    {
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var rgba = MemoryMarshal.Cast<byte, uint>(bitmap.GetPixelSpan());
        for (int i = 0, j = 0; i < rgba.Length; i++, j += 3)
            rgba[i] = Rgb[j] | (uint)Rgb[j + 1] << 8 | (uint)Rgb[j + 2] << 16 | 0xFF000000u;
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        var png = data.ToArray();
        textChunks ??= Parameters is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["parameters"] = Parameters };
        return textChunks.Count == 0 ? png : PngTextChunks.Insert(png, textChunks);
    }

    /// <summary>
    /// Writes the PNG to <paramref name="path"/>. An existing file is never replaced unless
    /// <paramref name="overwrite"/> is true: the user's files are not lost by accident.
    /// </summary>
    public void SavePng(string path, IReadOnlyDictionary<string, string>? textChunks = null, bool overwrite = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        AtomicFile.Write(path, EncodePng(textChunks), overwrite);
    }

    /// <summary>Decodes a PNG (or any format SkiaSharp reads) into an image; errors name the file.</summary>
    public static GeneratedImage LoadPng(string path)
    {
        using var bitmap = SKBitmap.Decode(path)
            ?? throw new InvalidDataException($"{path}: not a readable image.");
        using var rgba = bitmap.Copy(SKColorType.Rgba8888);
        var pixels = MemoryMarshal.Cast<byte, uint>(rgba.GetPixelSpan());
        var rgb = new byte[bitmap.Width * bitmap.Height * 3];
        for (int i = 0, j = 0; i < pixels.Length; i++, j += 3)
        {
            rgb[j] = (byte)pixels[i];
            rgb[j + 1] = (byte)(pixels[i] >> 8);
            rgb[j + 2] = (byte)(pixels[i] >> 16);
        }
        return new GeneratedImage(bitmap.Width, bitmap.Height, rgb);
    }
}
