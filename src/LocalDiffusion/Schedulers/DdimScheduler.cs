using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Denoising diffusion implicit models (Song et al. 2020, eq. 12), matching diffusers' <c>DDIMScheduler</c>:
/// x_prev = √ᾱ_prev·x̂₀ + √(1 − ᾱ_prev − σ²)·ε̂ + σ·z with σ = η·√((1−ᾱ_prev)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_prev)).
/// Deterministic at η = 0 (the default); with η &gt; 0 z is drawn from the generator.
/// </summary>
public sealed class DdimScheduler : IScheduler
{
    private readonly NoiseSchedule _schedule;
    private readonly float _finalAlphaCumprod;
    private readonly PredictionType _prediction;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly float? _clipRange;
    private readonly ScratchBuffer _denoised = new();
    private readonly NoiseBuffer _noise = new();
    private IntegerTimesteps? _timesteps;

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>DDIMScheduler</c> defaults (linear 0.0001→0.02,
    /// clip_sample true, set_alpha_to_one true, leading spacing).
    /// </summary>
    /// <param name="config">The scheduler config.</param>
    /// <param name="eta">η, the weight of fresh noise (diffusers passes it to <c>step</c>): 0 is DDIM, 1 is DDPM-like.</param>
    /// <exception cref="NotSupportedException">thresholding is requested (it needs per-image quantiles of pixel-space samples).</exception>
    public DdimScheduler(SchedulerConfig config, float eta = 0f)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfNegative(eta);
        Eta = eta;
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: true, finiteTerminalSigma: false);
        _finalAlphaCumprod = (config.SetAlphaToOne ?? true) ? 1f : _schedule.AlphasCumprod[0];
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _spacing = config.TimestepSpacing ?? TimestepSpacing.Leading;
        _stepsOffset = config.StepsOffset ?? 0;
        ConfigGuards.RejectThresholding(config, nameof(DdimScheduler));
        _clipRange = (config.ClipSample ?? true) ? (float)(config.ClipSampleRange ?? 1.0) : null;
    }

    /// <summary>η, the weight of fresh noise in each step.</summary>
    public float Eta { get; }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => Run.Values;

    /// <inheritdoc/>
    public float InitNoiseSigma => 1f;

    private IntegerTimesteps Run => _timesteps ?? throw TimestepsNotSet.Error(nameof(DdimScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        // DDIM rounds linspace timesteps to integers (Euler keeps them fractional).
        _timesteps = IntegerTimesteps.Create(_spacing, _schedule.TrainTimesteps, inferenceSteps, _stepsOffset);
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    /// <remarks>Each step reads only the index it is given, so the begin index is only checked.</remarks>
    public void SetBeginIndex(int beginIndex) => NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(DdimScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(DdimScheduler), nameof(stepIndex));
        NoiseAdding.Alpha(original, noise, _schedule.AlphasCumprod[Run[i]], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var timesteps = Run;
        var timestep = timesteps[stepIndex];
        var previous = timesteps.Previous(timestep);
        var alphaProd = _schedule.AlphasCumprod[timestep];
        var alphaProdPrev = previous >= 0 ? _schedule.AlphasCumprod[previous] : _finalAlphaCumprod;
        var betaProd = 1f - alphaProd;
        float sqrtAlpha = MathF.Sqrt(alphaProd), sqrtBeta = MathF.Sqrt(betaProd);

        var variance = (1f - alphaProdPrev) / betaProd * (1f - alphaProd / alphaProdPrev);
        var stdDev = Eta * MathF.Sqrt(variance);
        var directionScale = MathF.Sqrt(1f - alphaProdPrev - stdDev * stdDev);
        var sqrtAlphaPrev = MathF.Sqrt(alphaProdPrev);

        var denoised = _denoised.Get(sample.Length);
        for (var k = 0; k < sample.Length; k++)
        {
            var (x0, epsilon) = AlphaSpace.OriginalSampleAndNoise(_prediction, modelOutput[k], sample[k], sqrtAlpha, sqrtBeta);
            if (_clipRange is { } range)
                x0 = Math.Clamp(x0, -range, range);
            denoised[k] = sqrtAlphaPrev * x0 + directionScale * epsilon;
        }

        if (Eta > 0)
        {
            var noise = _noise.Draw(generator, sample.Length);
            for (var k = 0; k < sample.Length; k++)
                denoised[k] += stdDev * noise[k];
        }
        denoised.CopyTo(sample);
    }
}
