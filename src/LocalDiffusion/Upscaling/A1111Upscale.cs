using LocalDiffusion.Errors;

namespace LocalDiffusion.Upscaling;

/// <summary>
/// AUTOMATIC1111's upscaler semantics (modules/upscaler.py <c>Upscaler.upscale</c>), shared by its hires fix and its extras
/// tab: the target is ⌊side·scale / 8⌋·8; the upscaler runs (a model at most three times) until both sides reach it, then
/// Pillow's Lanczos makes the exact size. "None" only resizes; "Lanczos" and "Nearest" enlarge by the scale with that filter.
/// </summary>
public static class A1111Upscale
{
    /// <summary>The picture enlarged <paramref name="scale"/> times by <paramref name="upscaler"/> ("None", "Lanczos", "Nearest", or <paramref name="model"/>'s name).</summary>
    /// <exception cref="ArgumentException">The scale is not positive and finite, or the upscaler is neither built in nor <paramref name="model"/>.</exception>
    public static async Task<RgbaPicture> ByAsync(RgbaPicture picture, double scale, string upscaler, ImageUpscaler? model,
        IProgress<UpscaleProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(picture);
        ArgumentNullException.ThrowIfNull(upscaler);
        if (!double.IsFinite(scale) || scale <= 0)
            throw new InvalidRequestException(nameof(scale), null, null, _ => $"The upscale factor {scale} must be a positive number.");
        var (destW, destH) = (Math.Max((int)(picture.Width * scale / 8) * 8, 8), Math.Max((int)(picture.Height * scale / 8) * 8, 8));
        for (var pass = 0; pass < 3 && (picture.Width < destW || picture.Height < destH); pass++)
        {
            var before = (picture.Width, picture.Height);
            var (byW, byH) = ((int)(picture.Width * scale), (int)(picture.Height * scale));
            picture = upscaler switch
            {
                "None" => picture,
                "Lanczos" => picture.ResizeLanczos(byW, byH),
                "Nearest" => picture.ResizeNearest(byW, byH),
                _ when model is not null && model.Name == upscaler => await model.UpscaleAsync(picture, progress, cancellationToken).ConfigureAwait(false),
                _ => throw new InvalidRequestException(nameof(upscaler), null, null, called => $"The {called} '{upscaler}' is not available; use 'None', 'Lanczos', 'Nearest' or an ESRGAN-family model."),
            };
            if (before == (picture.Width, picture.Height)) break;
        }
        return picture.ResizeLanczos(destW, destH);
    }

    /// <summary>
    /// The picture at exactly <paramref name="width"/>×<paramref name="height"/> as A1111's <c>images.resize_image</c> makes
    /// it for the hires fix: "None" (or no enlargement needed) is one Lanczos resize; otherwise <see cref="ByAsync"/> by the
    /// larger side's factor, then Lanczos to the exact size.
    /// </summary>
    public static async Task<RgbaPicture> ToAsync(RgbaPicture picture, int width, int height, string upscaler, ImageUpscaler? model,
        IProgress<UpscaleProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(picture);
        var scale = Math.Max((double)width / picture.Width, (double)height / picture.Height);
        if (upscaler != "None" && scale > 1)
            picture = await ByAsync(picture, scale, upscaler, model, progress, cancellationToken).ConfigureAwait(false);
        return picture.ResizeLanczos(width, height);
    }
}
