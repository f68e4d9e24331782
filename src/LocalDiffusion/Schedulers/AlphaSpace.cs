namespace LocalDiffusion.Schedulers;

/// <summary>The view of the ᾱ-parameterised schedulers (DDPM, LCM): x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε, elementwise in float32.</summary>
internal static class AlphaSpace
{
    /// <summary>
    /// The x₀ estimate from one element of the model output, as diffusers computes it, clamped to ±<paramref name="clipRange"/>
    /// when given (clip_sample).
    /// </summary>
    public static float OriginalSample(PredictionType prediction, float modelOutput, float sample, float sqrtAlpha, float sqrtBeta, float? clipRange)
    {
        var x0 = prediction switch
        {
            PredictionType.Epsilon => (sample - sqrtBeta * modelOutput) / sqrtAlpha,
            PredictionType.Sample => modelOutput,
            _ => sqrtAlpha * sample - sqrtBeta * modelOutput,
        };
        return clipRange is { } range ? Math.Clamp(x0, -range, range) : x0;
    }
}
