namespace LocalDiffusion.Schedulers;

/// <summary>The view of the ᾱ-parameterised schedulers (DDIM, DDPM, LCM, TCD): x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε, elementwise in float32.</summary>
internal static class AlphaSpace
{
    /// <summary>
    /// The x₀ estimate from one element of the model output, as diffusers computes it, clamped to ±<paramref name="clipRange"/>
    /// when given (clip_sample).
    /// </summary>
    public static float OriginalSample(PredictionType prediction, float modelOutput, float sample, float sqrtAlpha, float sqrtBeta, float? clipRange)
    {
        var x0 = OriginalSampleAndNoise(prediction, modelOutput, sample, sqrtAlpha, sqrtBeta).X0;
        return clipRange is { } range ? Math.Clamp(x0, -range, range) : x0;
    }

    /// <summary>The unclipped x₀ estimate and the noise ε̂ from one element of the model output, as diffusers computes them.</summary>
    public static (float X0, float Epsilon) OriginalSampleAndNoise(PredictionType prediction, float modelOutput, float sample, float sqrtAlpha, float sqrtBeta) =>
        prediction switch
        {
            PredictionType.Epsilon => ((sample - sqrtBeta * modelOutput) / sqrtAlpha, modelOutput),
            PredictionType.Sample => (modelOutput, (sample - sqrtAlpha * modelOutput) / sqrtBeta),
            _ => (sqrtAlpha * sample - sqrtBeta * modelOutput, sqrtAlpha * modelOutput + sqrtBeta * sample),
        };
}
