using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Ancestral sampling of denoising diffusion probabilistic models (Ho et al. 2020, eqs. 6–7), matching diffusers'
/// <c>DDPMScheduler</c>: x_prev = c₀·x̂₀ + c_t·x + σ·z with the posterior mean coefficients
/// c₀ = √ᾱ_prev·β_t/(1 − ᾱ_t), c_t = √α_t·(1 − ᾱ_prev)/(1 − ᾱ_t) and σ from <c>variance_type</c>; z comes from the
/// generator at every step except t = 0. Steps of more than one training timestep use α_t = ᾱ_t/ᾱ_prev, as diffusers does.
/// </summary>
public sealed class DdpmScheduler : IScheduler
{
    private readonly NoiseSchedule _schedule;
    private readonly PredictionType _prediction;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly float? _clipRange;
    private readonly DdpmVariance _variance;
    private readonly NoiseBuffer _noise = new();
    private IntegerTimesteps? _timesteps;

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>DDPMScheduler</c> defaults (linear 0.0001→0.02,
    /// variance_type fixed_small, clip_sample true with range 1, leading spacing). Honours rescale_betas_zero_snr.
    /// </summary>
    /// <exception cref="NotSupportedException">
    /// thresholding, or a variance_type other than fixed_small, fixed_small_log and fixed_large (the learned types need a
    /// model that also predicts variance; fixed_large_log is a log-variance that diffusers' step turns into NaN).
    /// </exception>
    public DdpmScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        const string name = nameof(DdpmScheduler);
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: true, finiteTerminalSigma: false);
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _spacing = config.TimestepSpacing ?? TimestepSpacing.Leading;
        _stepsOffset = config.StepsOffset ?? 0;
        ConfigGuards.RejectThresholding(config, name);
        _clipRange = config.ClipSample ?? true ? (float)(config.ClipSampleRange ?? 1.0) : null;
        _variance = (config.VarianceType ?? "fixed_small") switch
        {
            "fixed_small" => DdpmVariance.FixedSmall,
            "fixed_small_log" => DdpmVariance.FixedSmallLog,
            "fixed_large" => DdpmVariance.FixedLarge,
            var other => throw new NotSupportedException(
                $"{name}: variance_type \"{other}\" is not supported; use fixed_small, fixed_small_log or fixed_large."),
        };
    }

    private enum DdpmVariance
    {
        FixedSmall,
        FixedSmallLog,
        FixedLarge,
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => Run.Values;

    /// <inheritdoc/>
    public float InitNoiseSigma => 1f;

    private IntegerTimesteps Run => _timesteps ?? throw TimestepsNotSet.Error(nameof(DdpmScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        _timesteps = IntegerTimesteps.Create(_spacing, _schedule.TrainTimesteps, inferenceSteps, _stepsOffset);
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    /// <remarks>Each step reads only the index it is given, so the begin index is only checked.</remarks>
    public void SetBeginIndex(int beginIndex) => NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(DdpmScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(DdpmScheduler), nameof(stepIndex));
        NoiseAdding.Alpha(original, noise, _schedule.AlphasCumprod[Run[i]], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var timesteps = Run;
        var timestep = timesteps[stepIndex];
        var previous = timesteps.Previous(timestep);
        var alphaProd = _schedule.AlphasCumprod[timestep];
        var alphaProdPrev = previous >= 0 ? _schedule.AlphasCumprod[previous] : 1f;
        float betaProd = 1f - alphaProd, betaProdPrev = 1f - alphaProdPrev;
        var currentAlpha = alphaProd / alphaProdPrev;
        var currentBeta = 1f - currentAlpha;
        float sqrtAlpha = MathF.Sqrt(alphaProd), sqrtBeta = MathF.Sqrt(betaProd);
        var x0Coefficient = MathF.Sqrt(alphaProdPrev) * currentBeta / betaProd;
        var sampleCoefficient = MathF.Sqrt(currentAlpha) * betaProdPrev / betaProd;

        for (var k = 0; k < sample.Length; k++)
        {
            var x0 = AlphaSpace.OriginalSample(_prediction, modelOutput[k], sample[k], sqrtAlpha, sqrtBeta, _clipRange);
            sample[k] = x0Coefficient * x0 + sampleCoefficient * sample[k];
        }

        if (timestep > 0)
        {
            var noise = _noise.Draw(generator, sample.Length);
            var std = StandardDeviation(betaProd, betaProdPrev, currentBeta);
            for (var k = 0; k < sample.Length; k++)
                sample[k] += std * noise[k];
        }
    }

    /// <summary>The noise scale of <c>variance_type</c>: √β̃_t (posterior variance, floored at 1e-20) or √β_t.</summary>
    private float StandardDeviation(float betaProd, float betaProdPrev, float currentBeta)
    {
        var posterior = Math.Max(betaProdPrev / betaProd * currentBeta, 1e-20f);
        return _variance switch
        {
            DdpmVariance.FixedSmall => MathF.Sqrt(posterior),
            DdpmVariance.FixedSmallLog => MathF.Exp(0.5f * MathF.Log(posterior)),
            _ => MathF.Sqrt(currentBeta),
        };
    }
}
