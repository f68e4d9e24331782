using System.Runtime.InteropServices;
using LocalDiffusion.Imaging;
using SkiaSharp;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Upscaling;

/// <summary>
/// A picture to upscale or upscaled: RGB8 pixels and, when the picture has any transparency, its alpha channel (which an
/// upscaler enlarges on its own, with Lanczos, as the networks take RGB only).
/// </summary>
public sealed class RgbaPicture
{
    // The same decompression-bomb limit as init images.
    private const long MaxPixels = 8192L * 8192;

    /// <summary>Wraps row-major RGB8 pixels and an optional alpha plane (one byte a pixel; null: opaque).</summary>
    /// <exception cref="ArgumentException">A buffer does not fit the size.</exception>
    public RgbaPicture(int width, int height, byte[] rgb, byte[]? alpha = null)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (width <= 0 || height <= 0 || rgb.Length != (long)width * height * 3)
            throw new InvalidRequestException(nameof(rgb), null, null, $"RgbaPicture: an RGB buffer of {rgb.Length} bytes does not fit {width}x{height}x3.");
        if (alpha is not null && alpha.Length != (long)width * height)
            throw new InvalidRequestException(nameof(alpha), null, null, $"RgbaPicture: an alpha buffer of {alpha.Length} bytes does not fit {width}x{height}.");
        (Width, Height, Rgb, Alpha) = (width, height, rgb, alpha);
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Row-major RGB8 pixels.</summary>
    public byte[] Rgb { get; }

    /// <summary>Row-major alpha, one byte a pixel; null when the picture is opaque.</summary>
    public byte[]? Alpha { get; }

    /// <summary>The pixels of a generated image (opaque).</summary>
    public static RgbaPicture FromImage(GeneratedImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new RgbaPicture(image.Width, image.Height, image.Rgb);
    }

    /// <summary>Reads a picture file (PNG, JPEG, WebP, …), turned upright by its EXIF orientation.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">It is not a picture SkiaSharp decodes, or larger than 64 megapixels; the message names it.</exception>
    public static RgbaPicture Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            throw new InvalidDataException($"{path} is a folder; a picture file (PNG, JPEG, WebP, …) was expected.");
        if (!File.Exists(path))
            throw new FileNotFoundException($"Image file not found: {path}", path);
        return Decode(File.ReadAllBytes(path), path);
    }

    /// <summary>Decodes an encoded picture held in memory; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a picture, or it is too large.</exception>
    public static RgbaPicture Decode(ReadOnlySpan<byte> encoded, string source)
    {
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data) ?? throw new InvalidDataException($"{source}: {encoded.Length} bytes that are not an image SkiaSharp can decode.");
        if ((long)codec.Info.Width * codec.Info.Height > MaxPixels)
            throw new InvalidDataException($"{source}: {codec.Info.Width}x{codec.Info.Height} is larger than the {MaxPixels / 1_000_000} megapixels a picture may have.");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        if (codec.GetPixels(info, out byte[] rgba) != SKCodecResult.Success)
            throw new InvalidDataException($"{source}: the {info.Width}x{info.Height} image could not be decoded (truncated or corrupt).");
        var (width, height) = (info.Width, info.Height);
        if (codec.EncodedOrigin != SKEncodedOrigin.TopLeft)
            (rgba, width, height) = InitImage.Orient(rgba, width, height, codec.EncodedOrigin);
        var rgb = new byte[width * height * 3];
        var alpha = new byte[width * height];
        var opaque = true;
        for (int p = 0; p < alpha.Length; p++)
        {
            rgb[3 * p] = rgba[4 * p];
            rgb[3 * p + 1] = rgba[4 * p + 1];
            rgb[3 * p + 2] = rgba[4 * p + 2];
            alpha[p] = rgba[4 * p + 3];
            opaque &= alpha[p] == 255;
        }
        return new RgbaPicture(width, height, rgb, opaque ? null : alpha);
    }

    /// <summary>Encodes the picture as PNG (RGBA when it has alpha, else opaque), with optional text chunks.</summary>
    public byte[] EncodePng(IReadOnlyDictionary<string, string>? textChunks = null)
    {
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, Alpha is null ? SKAlphaType.Opaque : SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var pixels = MemoryMarshal.Cast<byte, uint>(bitmap.GetPixelSpan());
        for (int i = 0, j = 0; i < pixels.Length; i++, j += 3)
            pixels[i] = Rgb[j] | (uint)Rgb[j + 1] << 8 | (uint)Rgb[j + 2] << 16 | (uint)(Alpha?[i] ?? 255) << 24;
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        var png = data.ToArray();
        return textChunks is null || textChunks.Count == 0 ? png : PngTextChunks.Insert(png, textChunks);
    }

    /// <summary>Writes the PNG to <paramref name="path"/>; an existing file is replaced only when <paramref name="overwrite"/> is true.</summary>
    public void SavePng(string path, bool overwrite = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        AtomicFile.Write(path, EncodePng(), overwrite);
    }

    /// <summary>This picture at <paramref name="width"/>×<paramref name="height"/> by Pillow's Lanczos, alpha included.</summary>
    public RgbaPicture ResizeLanczos(int width, int height) => width == Width && height == Height ? this
        : new RgbaPicture(width, height, LanczosResampler.Resize(Rgb, Width, Height, 3, width, height),
            Alpha is null ? null : LanczosResampler.Resize(Alpha, Width, Height, 1, width, height));

    /// <summary>This picture at <paramref name="width"/>×<paramref name="height"/> by nearest neighbour, alpha included.</summary>
    public RgbaPicture ResizeNearest(int width, int height) => width == Width && height == Height ? this
        : new RgbaPicture(width, height, NearestResampler.Resize(Rgb, Width, Height, 3, width, height),
            Alpha is null ? null : NearestResampler.Resize(Alpha, Width, Height, 1, width, height));
}
