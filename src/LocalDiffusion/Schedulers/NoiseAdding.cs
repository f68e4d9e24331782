using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// diffusers' <c>add_noise</c> formulas (and flow matching's <c>scale_noise</c>), float32 elementwise in its operation order, with the checks every
/// scheduler's <see cref="IScheduler.AddNoise"/> and <see cref="IScheduler.SetBeginIndex"/> share.
/// </summary>
internal static class NoiseAdding
{
    /// <summary>k-diffusion schedulers (Euler, Heun, LMS, DPM2): x = x₀ + ε·σ.</summary>
    public static void Sigma(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float sigma, Span<float> destination)
    {
        CheckLengths(original, noise, destination);
        for (var k = 0; k < destination.Length; k++)
            destination[k] = original[k] + noise[k] * sigma;
    }

    /// <summary>ᾱ schedulers (DDIM, DDPM, PNDM, LCM, TCD): x = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε.</summary>
    public static void Alpha(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float alphaCumprod, Span<float> destination)
    {
        CheckLengths(original, noise, destination);
        float sqrtAlpha = MathF.Sqrt(alphaCumprod), sqrtOneMinusAlpha = MathF.Sqrt(1f - alphaCumprod);
        for (var k = 0; k < destination.Length; k++)
            destination[k] = sqrtAlpha * original[k] + sqrtOneMinusAlpha * noise[k];
    }

    /// <summary>DPM-Solver, UniPC, DEIS: α_t = 1/√(σ²+1), σ_t = σ·α_t, x = α_t·x₀ + σ_t·ε.</summary>
    public static void Solver(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float sigma, Span<float> destination)
    {
        CheckLengths(original, noise, destination);
        var (alpha, sigmaT) = DpmSolverUpdate.AlphaSigma(sigma);
        for (var k = 0; k < destination.Length; k++)
            destination[k] = alpha * original[k] + sigmaT * noise[k];
    }

    /// <summary>Flow matching (SD3, FLUX; diffusers' <c>scale_noise</c>): x = σ·ε + (1 − σ)·x₀.</summary>
    public static void Flow(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float sigma, Span<float> destination)
    {
        CheckLengths(original, noise, destination);
        var keep = 1f - sigma;
        for (var k = 0; k < destination.Length; k++)
            destination[k] = sigma * noise[k] + keep * original[k];
    }

    /// <summary>The step index checked against the run's evaluations (0 ≤ index &lt; count).</summary>
    public static int CheckIndex(int index, int evaluations, string scheduler, string parameter)
    {
        if (index < 0 || index >= evaluations)
            throw new InvalidRequestException(parameter, index, null, $"{scheduler}: {parameter} must lie in [0, {evaluations - 1}] (the run has {evaluations} model evaluations).");
        return index;
    }

    private static void CheckLengths(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, Span<float> destination)
    {
        if (noise.Length != original.Length || destination.Length != original.Length)
            throw new InvalidRequestException(nameof(destination), destination.Length, null, $"AddNoise: original ({original.Length}), noise ({noise.Length}) and destination ({destination.Length}) must have the same length.");
    }
}
