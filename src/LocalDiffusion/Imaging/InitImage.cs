using System.Runtime.InteropServices;
using SkiaSharp;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Imaging;

/// <summary>
/// A picture given to a generation: the init image of img2img or the mask of inpainting, as RGB8 pixels.
/// When its size differs from the generation's, it is resized to that size (the whole picture, no crop, aspect not
/// kept), by Pillow's Lanczos pixel for pixel: what diffusers' <c>image_processor.preprocess(image, height, width)</c> does, so
/// the same seed gives diffusers' picture.
/// </summary>
public sealed class InitImage
{
    /// <summary>Wraps row-major RGB8 pixels (<paramref name="width"/> × <paramref name="height"/> × 3 bytes).</summary>
    /// <exception cref="ArgumentException">The buffer does not fit the size.</exception>
    public InitImage(int width, int height, byte[] rgb)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (width <= 0 || height <= 0 || rgb.Length != (long)width * height * 3)
            throw new InvalidRequestException(nameof(rgb), null, null, $"InitImage: an RGB buffer of {rgb.Length} bytes does not fit {width}x{height}x3.");
        Width = width;
        Height = height;
        Rgb = rgb;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Row-major RGB8 pixels.</summary>
    public byte[] Rgb { get; }

    // 8192² is twice the largest picture the engine makes (4096²); a decompression bomb stops here, not in memory.
    private const long MaxPixels = 8192L * 8192;

    /// <summary>Reads a PNG (or JPEG, WebP, … — whatever SkiaSharp decodes); alpha is dropped.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="IOException">The path is a folder.</exception>
    /// <exception cref="InvalidDataException">The file is not a picture SkiaSharp can decode; the message names it.</exception>
    public static InitImage FromPng(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        // "not found" for a folder that is right there would send the user hunting for a typo.
        if (Directory.Exists(path))
            throw new IOException($"{path} is a folder; a picture file (PNG, JPEG, WebP, …) was expected.");
        if (!File.Exists(path))
            throw new FileNotFoundException($"Image file not found: {path}", path);
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode.");
        return Decode(codec, path).Image;
    }

    /// <summary>
    /// Decodes an encoded picture (PNG, JPEG, WebP, …) held in memory. Its fully transparent pixels, if any, come back as
    /// an inpainting mask (white = repaint): the rule of OpenAI's image edits when no separate mask is given.
    /// </summary>
    /// <param name="encoded">The file's bytes.</param>
    /// <param name="source">What to call the picture in error messages.</param>
    /// <exception cref="InvalidDataException">The bytes are not a picture SkiaSharp can decode, or it is too large; the message names <paramref name="source"/>.</exception>
    public static (InitImage Image, InitImage? TransparentMask) Decode(ReadOnlySpan<byte> encoded, string source)
    {
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data) ?? throw new InvalidDataException($"{source}: {encoded.Length} bytes that are not an image SkiaSharp can decode.");
        return Decode(codec, source);
    }

    private static (InitImage Image, InitImage? TransparentMask) Decode(SKCodec codec, string source)
    {
        if ((long)codec.Info.Width * codec.Info.Height > MaxPixels)
            throw new InvalidDataException($"{source}: {codec.Info.Width}x{codec.Info.Height} is larger than the {MaxPixels / 1_000_000} megapixels an init image may have.");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        if (codec.GetPixels(info, out byte[] rgba) != SKCodecResult.Success)
            throw new InvalidDataException($"{source}: the {info.Width}x{info.Height} image could not be decoded (truncated or corrupt).");
        // Cameras and phones store a portrait shot as landscape pixels plus an EXIF Orientation tag; every viewer turns
        // it upright, so the user expects the upright picture, not the sensor's.
        var (width, height) = (info.Width, info.Height);
        if (codec.EncodedOrigin != SKEncodedOrigin.TopLeft)
            (rgba, width, height) = Orient(rgba, width, height, codec.EncodedOrigin);
        var image = FromRgba(rgba, width, height);
        if (codec.Info.AlphaType == SKAlphaType.Opaque) return (image, null);
        var mask = new byte[width * height * 3];
        var transparent = false;
        for (int i = 3, j = 0; i < rgba.Length; i += 4, j += 3)
        {
            if (rgba[i] != 0) continue;
            mask[j] = mask[j + 1] = mask[j + 2] = 255;
            transparent = true;
        }
        return (image, transparent ? new InitImage(width, height, mask) : null);
    }

    /// <summary>
    /// The RGBA pixels as displayed under EXIF <paramref name="origin"/>: for each displayed pixel (x, y) the stored one
    /// it shows (TIFF/EXIF Orientation 2–8: mirror, rotate 180°, flip, transpose, rotate 90° clockwise, transverse,
    /// rotate 90° counter-clockwise). Origins 5–8 swap width and height.
    /// </summary>
    internal static (byte[] Rgba, int Width, int Height) Orient(byte[] rgba, int width, int height, SKEncodedOrigin origin)
    {
        var swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        int w = swap ? height : width, h = swap ? width : height;
        var source = MemoryMarshal.Cast<byte, uint>(rgba);
        var result = new byte[rgba.Length];
        var target = MemoryMarshal.Cast<byte, uint>(result.AsSpan());
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var (sx, sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (width - 1 - x, y),
                    SKEncodedOrigin.BottomRight => (width - 1 - x, height - 1 - y),
                    SKEncodedOrigin.BottomLeft => (x, height - 1 - y),
                    SKEncodedOrigin.LeftTop => (y, x),
                    SKEncodedOrigin.RightTop => (y, height - 1 - x),
                    SKEncodedOrigin.RightBottom => (width - 1 - y, height - 1 - x),
                    SKEncodedOrigin.LeftBottom => (width - 1 - y, x),
                    _ => (x, y),
                };
                target[y * w + x] = source[sy * width + sx];
            }
        return (result, w, h);
    }

    /// <summary>The pixels of a generated image (e.g. to feed one generation's result to the next).</summary>
    public static InitImage FromImage(GeneratedImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new InitImage(image.Width, image.Height, image.Rgb);
    }

    /// <summary>This picture at <paramref name="width"/> × <paramref name="height"/> (itself when the size already matches).</summary>
    public InitImage Resize(int width, int height)
    {
        if (width == Width && height == Height)
            return this;
        return new InitImage(width, height, Imaging.LanczosResampler.Resize(Rgb, Width, Height, 3, width, height));
    }

    /// <summary>CHW floats in [−1, 1] (x/255·2 − 1), what the VAE encoder takes (diffusers' preprocess).</summary>
    internal float[] ToChw()
    {
        var plane = Width * Height;
        var chw = new float[3 * plane];
        for (var p = 0; p < plane; p++)
            for (var c = 0; c < 3; c++)
                chw[c * plane + p] = Rgb[p * 3 + c] / 255f * 2f - 1f;
        return chw;
    }

    /// <summary>Luminance in [0, 1] per pixel (ITU-R 601, as PIL's convert("L")), for masks.</summary>
    internal float[] ToGray()
    {
        var gray = new float[Width * Height];
        for (var p = 0; p < gray.Length; p++)
            gray[p] = (Rgb[3 * p] * 299 + Rgb[3 * p + 1] * 587 + Rgb[3 * p + 2] * 114) / 1000 / 255f;
        return gray;
    }

    private static InitImage FromRgba(ReadOnlySpan<byte> rgba, int width, int height)
    {
        var rgb = new byte[width * height * 3];
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[i];
            rgb[j + 1] = rgba[i + 1];
            rgb[j + 2] = rgba[i + 2];
        }
        return new InitImage(width, height, rgb);
    }
}
