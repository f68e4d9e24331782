using System.Runtime.InteropServices;
using SkiaSharp;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Imaging;

/// <summary>The encodings a generated image can be delivered in.</summary>
public enum ImageFormat
{
    /// <summary>Lossless PNG with the A1111 <c>parameters</c> text chunk.</summary>
    Png,
    /// <summary>JPEG (lossy; no text chunk).</summary>
    Jpeg,
    /// <summary>WebP (lossy below quality 100; no text chunk).</summary>
    Webp,
}

/// <summary>Encodes <see cref="GeneratedImage"/>s as PNG, JPEG or WebP, and names their media types.</summary>
public static class ImageEncoder
{
    /// <summary>
    /// Encodes <paramref name="image"/>. PNG keeps the A1111 parameters chunk (<see cref="GeneratedImage.EncodePng"/>);
    /// <paramref name="quality"/> (0–100) applies to JPEG and WebP.
    /// </summary>
    public static byte[] Encode(GeneratedImage image, ImageFormat format, int quality = 100)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (quality is < 0 or > 100) throw new InvalidRequestException(nameof(quality), quality, null, $"{nameof(quality)} must be between 0 and 100.");
        if (format == ImageFormat.Png) return image.EncodePng();
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var rgba = MemoryMarshal.Cast<byte, uint>(bitmap.GetPixelSpan());
        var rgb = image.Rgb;
        for (int i = 0, j = 0; i < rgba.Length; i++, j += 3)
            rgba[i] = rgb[j] | (uint)rgb[j + 1] << 8 | (uint)rgb[j + 2] << 16 | 0xFF000000u;
        using var skImage = SKImage.FromBitmap(bitmap);
        using var data = skImage.Encode(format == ImageFormat.Jpeg ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Webp, quality)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode {format}.");
        return data.ToArray();
    }

    /// <summary>
    /// Encodes <paramref name="image"/> and writes it to <paramref name="path"/> whole or not at all; an existing file
    /// is an <see cref="IOException"/> unless <paramref name="overwrite"/> is true.
    /// </summary>
    public static void Save(GeneratedImage image, string path, ImageFormat format, bool overwrite = false, int quality = 100)
    {
        ArgumentNullException.ThrowIfNull(path);
        AtomicFile.Write(path, Encode(image, format, quality), overwrite);
    }

    /// <summary>image/png, image/jpeg or image/webp.</summary>
    public static string MediaType(ImageFormat format) => format switch
    {
        ImageFormat.Jpeg => "image/jpeg",
        ImageFormat.Webp => "image/webp",
        _ => "image/png",
    };

    /// <summary>png, jpeg or webp: the file extension and the OpenAI <c>output_format</c> value.</summary>
    public static string Extension(ImageFormat format) => format switch
    {
        ImageFormat.Jpeg => "jpeg",
        ImageFormat.Webp => "webp",
        _ => "png",
    };

    /// <summary>Parses png | jpeg | jpg | webp (any case), or an image/* media type; null when unknown.</summary>
    public static ImageFormat? Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "png" or "image/png" => ImageFormat.Png,
        "jpeg" or "jpg" or "image/jpeg" or "image/jpg" => ImageFormat.Jpeg,
        "webp" or "image/webp" => ImageFormat.Webp,
        _ => null,
    };
}
