using LocalDiffusion.Errors;

namespace LocalDiffusion;

/// <summary>The limits every family's requests are checked against, stated once (front-ends read them too).</summary>
public static class RequestLimits
{
    /// <summary>The longest side of an image in pixels.</summary>
    public const int MaxSide = 4096;

    /// <summary>The most images one request may ask for.</summary>
    public const int MaxImages = 64;

    /// <summary>The most denoising steps (a scheduler config may allow fewer, and says so).</summary>
    public const int MaxSteps = 1000;

    /// <summary>The largest guidance scale: ComfyUI's limit (AUTOMATIC1111's slider stops at 30); beyond it guidance only overflows.</summary>
    public const float MaxGuidance = 100f;

    /// <summary>The most T5 tokens a flow-matching family's conditioner reads (FLUX.1-dev's 512).</summary>
    public const int MaxSequenceLength = 512;

    /// <summary>
    /// The checks every family makes before any work (prompts present; steps, guidance and image count in range; preview
    /// steps counted from 1), each an InvalidRequestException naming the property. Steps and guidance must be resolved.
    /// </summary>
    internal static void Check(GenerationRequest r)
    {
        if (r.Prompt is null) throw new InvalidRequestException(nameof(r.Prompt), null, "text", name => $"{name} must not be null.");
        if (r.NegativePrompt is null) throw new InvalidRequestException(nameof(r.NegativePrompt), null, "text", name => $"{name} must not be null (use \"\").");
        if (r.StepCount is < 1 or > MaxSteps)
            throw InvalidRequestException.OutOfRange(nameof(r.Steps), r.Steps, $"between 1 and {MaxSteps}");
        if (!float.IsFinite(r.Guidance) || r.Guidance is < 0 or > MaxGuidance)
            throw InvalidRequestException.OutOfRange(nameof(r.GuidanceScale), r.Guidance, $"a number from 0 to {MaxGuidance} (usually 1–15)");
        if (r.ImageCount is < 1 or > MaxImages)
            throw InvalidRequestException.OutOfRange(nameof(r.ImageCount), r.ImageCount, $"between 1 and {MaxImages}");
        // A preview step that never comes would silently give no preview; the upper bound (the evaluations the schedule
        // runs) is checked once the schedule is known.
        if (r.PreviewSteps is { Count: > 0 } previews && previews.Min() is var early && early < 1)
            throw new InvalidRequestException(nameof(r.PreviewSteps), early, "steps counted from 1",
                name => $"{name} contains {early}; steps are counted from 1 (the first evaluation).");
    }
}
