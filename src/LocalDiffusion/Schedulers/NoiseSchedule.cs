namespace LocalDiffusion.Schedulers;

/// <summary>
/// The training noise schedule: betas and their cumulative product ᾱ_t = ∏(1 − β), in float32 exactly as diffusers
/// computes them with torch (float32 linspace, cumulative product accumulated in double and stored as float32).
/// </summary>
public sealed class NoiseSchedule
{
    private NoiseSchedule(float[] betas, float[] alphasCumprod)
    {
        Betas = betas;
        AlphasCumprod = alphasCumprod;
    }

    /// <summary>β_t for t = 0..T−1.</summary>
    public IReadOnlyList<float> Betas { get; }

    /// <summary>ᾱ_t for t = 0..T−1.</summary>
    public IReadOnlyList<float> AlphasCumprod { get; }

    /// <summary>T, the number of training timesteps.</summary>
    public int TrainTimesteps => AlphasCumprod.Count;

    /// <summary>
    /// The schedule a scheduler builds from <paramref name="config"/>, with <paramref name="defaults"/> for absent keys
    /// (diffusers' beta settings are class defaults: <see cref="BetaDefaults.Standard"/> for most classes).
    /// </summary>
    /// <param name="config">The loaded or overridden config.</param>
    /// <param name="defaults">The scheduler class's defaults for T, beta_start, beta_end and beta_schedule.</param>
    /// <param name="supportsZeroSnrRescale">Whether the class has <c>rescale_betas_zero_snr</c> (PNDM and LMS do not, and ignore the key).</param>
    /// <param name="finiteTerminalSigma">
    /// Whether a zero-SNR rescale sets the last ᾱ to 2⁻²⁴ instead of 0, as diffusers' sigma-based classes (Euler,
    /// Euler a, DPM-Solver) do so that σ = √((1−ᾱ)/ᾱ) stays finite; DDIM keeps the exact 0.
    /// </param>
    public static NoiseSchedule FromConfig(SchedulerConfig config, BetaDefaults defaults, bool supportsZeroSnrRescale, bool finiteTerminalSigma = false)
    {
        var trainTimesteps = config.NumTrainTimesteps ?? defaults.TrainTimesteps;
        var betas = config.TrainedBetas is { } trained
            ? trained.ToArray()
            : BetaSchedules.Create(
                config.BetaSchedule ?? defaults.Schedule,
                trainTimesteps,
                config.BetaStart ?? defaults.BetaStart,
                config.BetaEnd ?? defaults.BetaEnd);
        var rescale = supportsZeroSnrRescale && (config.RescaleBetasZeroSnr ?? false);
        if (rescale)
            betas = BetaSchedules.RescaleZeroTerminalSnr(betas);

        var alphasCumprod = BetaSchedules.AlphasCumprod(betas);
        if (rescale && finiteTerminalSigma)
            alphasCumprod[^1] = MathF.Pow(2, -24);
        return new NoiseSchedule(betas, alphasCumprod);
    }

    /// <summary>σ_t = √((1 − ᾱ_t)/ᾱ_t) for t = 0..T−1 in float32, the sigmas of the k-diffusion samplers.</summary>
    public float[] Sigmas()
    {
        var sigmas = new float[TrainTimesteps];
        for (var t = 0; t < sigmas.Length; t++)
            sigmas[t] = MathF.Sqrt((1f - AlphasCumprod[t]) / AlphasCumprod[t]);
        return sigmas;
    }
}

/// <summary>A scheduler class's defaults for the training schedule, used where the config lacks the key.</summary>
/// <param name="TrainTimesteps">num_train_timesteps.</param>
/// <param name="BetaStart">beta_start.</param>
/// <param name="BetaEnd">beta_end.</param>
/// <param name="Schedule">beta_schedule.</param>
public sealed record BetaDefaults(int TrainTimesteps, double BetaStart, double BetaEnd, BetaSchedule Schedule)
{
    /// <summary>1000 steps, linear 0.0001 → 0.02: the defaults of PNDM, DDIM, Euler, Euler a, LMS and DPM-Solver in diffusers.</summary>
    public static BetaDefaults Standard { get; } = new(1000, 0.0001, 0.02, BetaSchedule.Linear);
}
