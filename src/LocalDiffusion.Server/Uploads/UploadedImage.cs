using LocalDiffusion.Imaging;
using LocalDiffusion.Server.Errors;
using SkiaSharp;

namespace LocalDiffusion.Server.Uploads;

/// <summary>
/// A picture a client sent (a multipart file or an A1111 base64 string), decoded to RGBA8. Every failure is a 400 that
/// names the field it came in, before any work starts.
/// </summary>
internal sealed class UploadedImage
{
    // The largest picture the engine makes is 4096²; a bigger upload could only be scaled down, and decoding happens before
    // the queue, for every request at once, so the limit also bounds that memory (64 MiB of RGBA per upload). A
    // decompression bomb stops here, from the header, before its pixels are allocated. A 12-megapixel phone photo fits.
    private const long MaxPixels = 4096L * 4096;

    private UploadedImage(int width, int height, byte[] rgba, bool hasAlphaChannel)
    {
        Width = width;
        Height = height;
        Rgba = rgba;
        HasAlphaChannel = hasAlphaChannel;
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>Row-major RGBA8, not premultiplied (a fully transparent pixel keeps whatever colour the file stored).</summary>
    public byte[] Rgba { get; }

    /// <summary>The file declares transparency (PNG with alpha, WebP with alpha); false for JPEG and opaque PNGs.</summary>
    public bool HasAlphaChannel { get; }

    public string Size => $"{Width}x{Height}";

    /// <summary>Decodes PNG, JPEG, WebP, GIF or BMP bytes; <paramref name="field"/> is named in the 400 when they are not a picture.</summary>
    public static UploadedImage Decode(ReadOnlySpan<byte> bytes, string field)
    {
        if (bytes.IsEmpty)
            throw ApiException.BadRequest(field, $"Invalid '{field}': the file is empty.", "invalid_image");
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data)
            ?? throw ApiException.BadRequest(field, $"Invalid '{field}': {bytes.Length} bytes that are not a PNG, JPEG or WebP image.", "invalid_image");
        var (width, height) = (codec.Info.Width, codec.Info.Height);
        if ((long)width * height > MaxPixels)
            throw ApiException.BadRequest(field, $"Invalid '{field}': {width}x{height} is more than the 4096x4096 pixels this server reads; scale it down first.", "invalid_image");
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var result = codec.GetPixels(info, out byte[] rgba);
        // SkiaSharp fills a truncated file's missing rows and calls it IncompleteInput: a broken upload, refused here.
        if (result != SKCodecResult.Success)
            throw ApiException.BadRequest(field, $"Invalid '{field}': the {width}x{height} image could not be decoded ({result}: truncated or corrupt).", "invalid_image");
        return new UploadedImage(width, height, rgba, codec.Info.AlphaType != SKAlphaType.Opaque);
    }

    /// <summary>Decodes base64 (with or without a <c>data:image/png;base64,</c> prefix, as A1111 clients send it).</summary>
    public static UploadedImage DecodeBase64(string text, string field) => Decode(Base64Bytes(text, field), field);

    /// <summary>The file bytes of base64 text, with or without a <c>data:</c> URL prefix; not base64 is a 400 naming <paramref name="field"/>.</summary>
    public static byte[] Base64Bytes(string text, string field)
    {
        var comma = text.StartsWith("data:", StringComparison.OrdinalIgnoreCase) ? text.IndexOf(',') : -1;
        var payload = comma >= 0 ? text[(comma + 1)..] : text;
        try
        {
            return Convert.FromBase64String(payload.Trim());
        }
        catch (FormatException)
        {
            throw ApiException.BadRequest(field, $"Invalid '{field}': not base64 (a PNG or JPEG encoded as base64, optionally with a data: URL prefix).", "invalid_image");
        }
    }

    /// <summary>The colour, alpha dropped: what the engine starts img2img from.</summary>
    public InitImage ToInitImage()
    {
        var rgb = new byte[Width * Height * 3];
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = Rgba[i];
            rgb[j + 1] = Rgba[i + 1];
            rgb[j + 2] = Rgba[i + 2];
        }
        return new InitImage(Width, Height, rgb);
    }

    /// <summary>True when some pixel is fully transparent (alpha 0).</summary>
    public bool HasTransparentPixel()
    {
        if (!HasAlphaChannel) return false;
        for (var i = 3; i < Rgba.Length; i += 4)
            if (Rgba[i] == 0) return true;
        return false;
    }

    /// <summary>
    /// An engine mask (white = repaint) from alpha: a pixel is repainted when <paramref name="repaint"/> holds for its alpha.
    /// OpenAI's masks repaint alpha 0; A1111's RGBA masks repaint alpha above 128 (its create_binary_mask).
    /// </summary>
    public InitImage MaskFromAlpha(Func<byte, bool> repaint)
    {
        var rgb = new byte[Width * Height * 3];
        for (int i = 3, j = 0; j < rgb.Length; i += 4, j += 3)
            if (repaint(Rgba[i]))
                rgb.AsSpan(j, 3).Fill(255);
        return new InitImage(Width, Height, rgb);
    }
}
