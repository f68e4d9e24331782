using System.Globalization;
using LocalDiffusion.Errors;

namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// SDXL's micro-conditioning, the UNet's <c>time_ids</c>, as diffusers' <c>_get_add_time_ids</c> builds them from the
/// request's values: base (original height, width, crop top, left, target height, width), by default (image size, 0, 0,
/// image size); the refiner (original height, width, crop top, left, aesthetic score), by default 6 for the prompt and
/// 2.5 for the negative. Each negative value defaults to the prompt's (where diffusers' pipelines disagree with each
/// other: StableDiffusionXLPipeline uses the negative sizes only when both are given, and defaults the negative crop
/// to (0, 0) rather than the prompt's; with every value given they all agree).
/// </summary>
internal static class SdxlTimeIds
{
    /// <summary>diffusers' StableDiffusionXLImg2ImgPipeline defaults.</summary>
    public const float AestheticScore = 6f, NegativeAestheticScore = 2.5f;

    private const int MaxPixels = 16384;

    /// <summary>The time ids of each prompt in <c>[negative, prompt]</c> order (<paramref name="promptCount"/> 1 or 2).</summary>
    public static float[][] For(GenerationRequest request, int promptCount, bool refiner, int height, int width)
    {
        var original = request.OriginalSize ?? new PixelSize(width, height);
        var crop = request.CropsCoordsTopLeft ?? default;
        var target = request.TargetSize ?? new PixelSize(width, height);
        var result = new float[promptCount][];
        for (var p = 0; p < promptCount; p++)
        {
            var negative = p < promptCount - 1;
            var o = negative ? request.NegativeOriginalSize ?? original : original;
            var c = negative ? request.NegativeCropsCoordsTopLeft ?? crop : crop;
            var t = negative ? request.NegativeTargetSize ?? target : target;
            result[p] = refiner
                ? [o.Height, o.Width, c.Top, c.Left, negative ? request.NegativeAestheticScore ?? NegativeAestheticScore : request.AestheticScore ?? AestheticScore]
                : [o.Height, o.Width, c.Top, c.Left, t.Height, t.Width];
        }
        return result;
    }

    /// <summary>The defaults for a <paramref name="height"/>×<paramref name="width"/> image.</summary>
    public static float[][] For(int promptCount, bool refiner, int height, int width) =>
        For(new GenerationRequest { Prompt = "" }, promptCount, refiner, height, width);

    /// <summary>
    /// Refuses micro-conditioning the model cannot take (any of it on a model without time ids, target sizes on the
    /// refiner, aesthetic scores on the base) and values out of range, naming the property.
    /// </summary>
    public static void Validate(GenerationRequest r, string familyName, bool sdxl, bool refiner)
    {
        (string Name, bool Set, bool Allowed)[] properties =
        [
            (nameof(r.OriginalSize), r.OriginalSize is not null, sdxl),
            (nameof(r.CropsCoordsTopLeft), r.CropsCoordsTopLeft is not null, sdxl),
            (nameof(r.TargetSize), r.TargetSize is not null, sdxl && !refiner),
            (nameof(r.NegativeOriginalSize), r.NegativeOriginalSize is not null, sdxl),
            (nameof(r.NegativeCropsCoordsTopLeft), r.NegativeCropsCoordsTopLeft is not null, sdxl),
            (nameof(r.NegativeTargetSize), r.NegativeTargetSize is not null, sdxl && !refiner),
            (nameof(r.AestheticScore), r.AestheticScore is not null, refiner),
            (nameof(r.NegativeAestheticScore), r.NegativeAestheticScore is not null, refiner),
        ];
        foreach (var (name, set, allowed) in properties)
        {
            if (!set || allowed) continue;
            var why = !sdxl
                ? $"it is SDXL micro-conditioning, and this model ({familyName}) takes no time_ids"
                : refiner
                    ? "the SDXL refiner's time_ids are (original size, crop, aesthetic score): it has no target size"
                    : "only the SDXL refiner's time_ids hold an aesthetic score; SDXL base's hold (original size, crop, target size)";
            throw new InvalidRequestException(name, null, null, called => $"{called} cannot be used with this model: {why}.");
        }
        CheckSize(nameof(r.OriginalSize), r.OriginalSize);
        CheckSize(nameof(r.TargetSize), r.TargetSize);
        CheckSize(nameof(r.NegativeOriginalSize), r.NegativeOriginalSize);
        CheckSize(nameof(r.NegativeTargetSize), r.NegativeTargetSize);
        CheckCrop(nameof(r.CropsCoordsTopLeft), r.CropsCoordsTopLeft);
        CheckCrop(nameof(r.NegativeCropsCoordsTopLeft), r.NegativeCropsCoordsTopLeft);
        CheckScore(nameof(r.AestheticScore), r.AestheticScore);
        CheckScore(nameof(r.NegativeAestheticScore), r.NegativeAestheticScore);
    }

    private static void CheckSize(string name, PixelSize? size)
    {
        if (size is { } s && (s.Width is < 1 or > MaxPixels || s.Height is < 1 or > MaxPixels))
            throw new InvalidRequestException(name, s, null, called => $"{called} is {s}; width and height must be 1 to {MaxPixels} pixels (e.g. 1024x1024).");
    }

    private static void CheckCrop(string name, CropCoordinates? crop)
    {
        if (crop is { } c && (c.Top is < 0 or > MaxPixels || c.Left is < 0 or > MaxPixels))
            throw new InvalidRequestException(name, c, null, called => $"{called} is {c} (top,left); each must be 0 to {MaxPixels} pixels (0,0 asks for a centred picture).");
    }

    private static void CheckScore(string name, float? score)
    {
        if (score is { } s && !float.IsFinite(s))
            throw new InvalidRequestException(name, s, null, called => $"{called} is {s.ToString(CultureInfo.InvariantCulture)}; it must be a finite number (LAION aesthetic scores run from 1 to 10; diffusers' defaults are 6 and 2.5).");
    }
}
