using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// The sigma shifts of flow matching (Esser et al. 2024, "Scaling Rectified Flow Transformers", §5.3.2), as diffusers'
/// FlowMatch schedulers and FLUX pipeline compute them (v0.31.0). σ runs from 1 (pure noise) towards 0 (data); a shift
/// spends more of the steps at high noise, which larger images need.
/// </summary>
public static class FlowMatchShift
{
    /// <summary>
    /// diffusers' <c>calculate_shift</c> (FluxPipeline): μ linear in the image's token count, <paramref name="baseShift"/> at
    /// <paramref name="baseSeqLen"/> tokens and <paramref name="maxShift"/> at <paramref name="maxSeqLen"/> (extrapolated beyond),
    /// in double precision and diffusers' operation order: m = (max − base)/(maxLen − baseLen), b = base − m·baseLen, μ = n·m + b.
    /// </summary>
    /// <param name="imageSeqLen">Image tokens: FLUX packs 2×2 latent pixels per token, so (H/16)·(W/16) for an H×W picture.</param>
    /// <param name="baseSeqLen">Scheduler config <c>base_image_seq_len</c>.</param>
    /// <param name="maxSeqLen">Scheduler config <c>max_image_seq_len</c>.</param>
    /// <param name="baseShift">Scheduler config <c>base_shift</c>.</param>
    /// <param name="maxShift">
    /// Scheduler config <c>max_shift</c>. The default is the scheduler's and FLUX.1-dev's config value 1.15, which the pipeline
    /// always passes; the Python function's own default (1.16) is never used by diffusers' pipelines.
    /// </param>
    /// <returns>μ for <see cref="FlowMatchEulerDiscreteScheduler.SetTimesteps(int, double?)"/>.</returns>
    public static double CalculateShift(int imageSeqLen, int baseSeqLen = 256, int maxSeqLen = 4096, double baseShift = 0.5, double maxShift = 1.15)
    {
        if (maxSeqLen == baseSeqLen)
            throw new InvalidRequestException(nameof(maxSeqLen), null, null, $"{nameof(maxSeqLen)} ({maxSeqLen}) must differ from baseSeqLen ({baseSeqLen}).");
        var m = (maxShift - baseShift) / (maxSeqLen - baseSeqLen);
        var b = baseShift - m * baseSeqLen;
        return imageSeqLen * m + b;
    }

    /// <summary>The static shift s·σ/(1 + (s − 1)·σ), in double (numpy float64, as <c>set_timesteps</c> computes it).</summary>
    internal static double Static(double shift, double sigma) => shift * sigma / (1 + (shift - 1) * sigma);

    /// <summary>diffusers' <c>time_shift(mu, 1.0, σ)</c>: e^μ / (e^μ + (1/σ − 1)¹), in double.</summary>
    internal static double Dynamic(double mu, double sigma) => Math.Exp(mu) / (Math.Exp(mu) + Math.Pow(1 / sigma - 1, 1.0));

    /// <summary>
    /// The ends of the training schedule a FlowMatch scheduler's <c>__init__</c> builds: t = T, T−1, …, 1, σ = t/T in float32,
    /// statically shifted in float32 unless the shift is dynamic. Returns (σ_max, σ_min) widened to double as <c>.item()</c> does.
    /// </summary>
    internal static (double SigmaMax, double SigmaMin) TrainingRange(int trainTimesteps, double shift, bool dynamic)
    {
        // torch casts each Python scalar (shift, shift − 1 computed in double) to float32 before the float32 arithmetic.
        float Shifted(float sigma) => dynamic ? sigma : (float)shift * sigma / (1f + (float)(shift - 1) * sigma);
        return (Shifted((float)trainTimesteps / trainTimesteps), Shifted(1f / trainTimesteps));
    }

    /// <summary>
    /// σ for <paramref name="inferenceSteps"/> evenly spaced timesteps between σ_max·T and σ_min·T (numpy float64 linspace), ÷T.
    /// Not yet shifted.
    /// </summary>
    internal static double[] EvenSigmas(int trainTimesteps, double sigmaMax, double sigmaMin, int inferenceSteps)
    {
        var timesteps = NumpyRanges.Linspace(sigmaMax * trainTimesteps, sigmaMin * trainTimesteps, inferenceSteps);
        return timesteps.Select(t => t / trainTimesteps).ToArray();
    }

    /// <summary>The run's float32 sigmas with the final 0 appended, and timesteps σ·T (float32 products).</summary>
    internal static (float[] Sigmas, float[] Timesteps) Finish(IReadOnlyList<double> shifted, int trainTimesteps)
    {
        var sigmas = new float[shifted.Count + 1];
        var timesteps = new float[shifted.Count];
        for (var i = 0; i < shifted.Count; i++)
        {
            sigmas[i] = (float)shifted[i];
            timesteps[i] = sigmas[i] * trainTimesteps;
        }
        return (sigmas, timesteps);
    }
}
