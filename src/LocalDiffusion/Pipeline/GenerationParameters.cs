using System.Globalization;

namespace LocalDiffusion.Pipeline;

/// <summary>Formats generation settings as AUTOMATIC1111's PNG <c>parameters</c> text, which many tools read back.</summary>
internal static class GenerationParameters
{
    // usedNegativePrompt: whether classifier-free guidance ran, so the negative prompt had an effect.
    public static string Format(GenerationRequest request, bool usedNegativePrompt, string sampler, long seed, int width, int height, string model, int batchIndex, int batchSize)
    {
        var ci = CultureInfo.InvariantCulture;
        var lines = new List<string> { request.Prompt };
        if (usedNegativePrompt && request.NegativePrompt.Length > 0)
            lines.Add("Negative prompt: " + request.NegativePrompt);
        var settings = new List<string>
        {
            $"Steps: {request.Steps}",
            $"Sampler: {sampler}",
            string.Create(ci, $"CFG scale: {request.GuidanceScale}"),
            $"Seed: {seed}",
            $"Size: {width}x{height}",
            $"Model: {model}",
        };
        if (batchSize > 1) settings.Add($"Batch size: {batchSize}, Batch pos: {batchIndex}");
        if (request.InitImage is not null) settings.Add(string.Create(ci, $"Denoising strength: {request.EffectiveStrength}"));
        if (request.MaskImage is not null) settings.Add(string.Create(ci, $"Mask blur: {request.MaskBlur}"));
        if (request.DenoisingStart is { } start) settings.Add(string.Create(ci, $"Refiner switch at: {start}"));
        if (request.Eta is { } eta) settings.Add(string.Create(ci, $"Eta: {eta}"));
        // SDXL micro-conditioning, when the request set it (A1111 has no infotext keys for these; the names are the CLI's).
        if (request.OriginalSize is { } original) settings.Add($"Original size: {original}");
        if (request.CropsCoordsTopLeft is { } crop) settings.Add($"Crop: {crop}");
        if (request.TargetSize is { } target) settings.Add($"Target size: {target}");
        if (request.NegativeOriginalSize is { } negativeOriginal) settings.Add($"Negative original size: {negativeOriginal}");
        if (request.NegativeCropsCoordsTopLeft is { } negativeCrop) settings.Add($"Negative crop: {negativeCrop}");
        if (request.NegativeTargetSize is { } negativeTarget) settings.Add($"Negative target size: {negativeTarget}");
        if (request.AestheticScore is { } score) settings.Add(string.Create(ci, $"Aesthetic score: {score}"));
        if (request.NegativeAestheticScore is { } negativeScore) settings.Add(string.Create(ci, $"Negative aesthetic score: {negativeScore}"));
        settings.AddRange(ControlNet.ControlNetInfotext.Entries(request));
        settings.Add("RNG: CPU");
        settings.Add("Version: LocalDiffusion");
        lines.Add(string.Join(", ", settings));
        return string.Join("\n", lines);
    }
}
