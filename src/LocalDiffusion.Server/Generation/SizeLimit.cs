using LocalDiffusion.Model;
using LocalDiffusion.Pipeline;
using System.Globalization;
using LocalDiffusion.Server.Errors;
using Microsoft.Extensions.Logging;

namespace LocalDiffusion.Server.Generation;

/// <summary>
/// How large a picture one request may ask of a model. A model draws well near its native size (what it was trained
/// at); far above it, it repeats its subject in tiles, and the work grows faster than the pixels. Up to twice the native
/// area is served quietly, up to the cap (<see cref="ServerOptions.MaxPixels"/>, default 4× the native area) with a
/// warning, and above it the request is refused before it queues, so one DALL-E-sized request cannot hold the slot for minutes.
/// </summary>
internal sealed class SizeLimit(long? maxPixels, ILogger logger)
{
    /// <summary>Above this multiple of the native area a picture gets a warning.</summary>
    public const double WarnNativeAreas = 2;

    /// <summary>The cap for a model whose native size is <paramref name="info"/>'s.</summary>
    public long MaxPixels(ModelInfo info) => maxPixels ?? (long)SizeLimitDefaults.NativeAreas * info.NativeWidth * info.NativeHeight;

    /// <summary>Throws a 400 naming <paramref name="field"/> over the cap; returns the warnings for a size far above native.</summary>
    public IReadOnlyList<string> Check(string model, ModelInfo info, int width, int height, string field)
    {
        var pixels = (long)width * height;
        var native = (long)info.NativeWidth * info.NativeHeight;
        var cap = MaxPixels(info);
        if (pixels > cap)
            throw ApiException.BadRequest(field,
                $"{width}x{height} is {pixels.ToString(CultureInfo.InvariantCulture)} pixels, over this server's cap of {cap.ToString(CultureInfo.InvariantCulture)} for '{model}' " +
                $"(native size {info.NativeWidth}x{info.NativeHeight}; the cap is --max-pixels, by default {SizeLimitDefaults.NativeAreas}× the native area). " +
                $"Ask for 'auto' or a size near {info.NativeWidth}x{info.NativeHeight}.", "size_too_large");
        if (pixels <= WarnNativeAreas * native) return [];
        var warning = $"{width}x{height} is {(double)pixels / native:0.#}× the native area of '{model}' ({info.NativeWidth}x{info.NativeHeight}): " +
            "expect repeated subjects and a much longer generation; 'auto' gives the native size.";
        logger.LogWarning("{Warning}", warning);
        return [warning];
    }
}

/// <summary>The default of <see cref="ServerOptions.MaxPixels"/>.</summary>
public static class SizeLimitDefaults
{
    /// <summary>The default cap on one image's pixels, as a multiple of the model's native area.</summary>
    public const int NativeAreas = 4;
}
