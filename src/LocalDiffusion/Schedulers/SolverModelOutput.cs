namespace LocalDiffusion.Schedulers;

/// <summary>
/// The model output as a multistep solver's variable at k-diffusion sigma σ (α = 1/√(σ²+1), σ_t = σ·α): the data
/// prediction x₀ or the noise ε, in float32 and diffusers' operation order.
/// </summary>
internal static class SolverModelOutput
{
    /// <summary>Writes the converted output into <paramref name="converted"/> (the length of <paramref name="sample"/>).</summary>
    public static void Convert(PredictionType prediction, bool dataPrediction, ReadOnlySpan<float> modelOutput, ReadOnlySpan<float> sample,
        float sigma, Span<float> converted)
    {
        var (alpha, sigmaT) = DpmSolverUpdate.AlphaSigma(sigma);
        for (var k = 0; k < converted.Length; k++)
        {
            float m = modelOutput[k], x = sample[k];
            converted[k] = (dataPrediction, prediction) switch
            {
                (true, PredictionType.Epsilon) => (x - sigmaT * m) / alpha,
                (true, PredictionType.Sample) => m,
                (true, _) => alpha * x - sigmaT * m,
                (false, PredictionType.Epsilon) => m,
                (false, PredictionType.Sample) => (x - alpha * m) / sigmaT,
                (false, _) => alpha * m + sigmaT * x,
            };
        }
    }
}
