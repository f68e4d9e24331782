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
}
