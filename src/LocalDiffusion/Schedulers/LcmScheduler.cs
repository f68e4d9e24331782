using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Latent consistency model sampling (Luo et al. 2023), matching diffusers' <c>LCMScheduler</c>: each step maps the
/// sample to the consistency function's estimate x̂ = c_out·x₀ + c_skip·x (boundary conditions with σ_data = 0.5 at the
/// scaled timestep), then re-noises it to the next timestep with fresh noise from the generator: x ← √ᾱ_prev·x̂ + √(1 − ᾱ_prev)·z;
/// the last step returns x̂. Meant for LCM-distilled UNets (which also take a guidance embedding, <c>timestep_cond</c>,
/// that the pipeline supplies), 1–8 steps.
/// </summary>
public sealed class LcmScheduler : IScheduler
{
    private readonly NoiseSchedule _schedule;
    private readonly float _finalAlphaCumprod;
    private readonly PredictionType _prediction;
    private readonly int _originalSteps;
    private readonly float? _clipRange;
    private readonly double _timestepScaling;
    private readonly NoiseBuffer _noise = new();
    private int[]? _timesteps;
    private float[] _timestepValues = [];

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>LCMScheduler</c> defaults (scaled_linear 0.00085→0.012,
    /// original_inference_steps 50, set_alpha_to_one true, clip_sample false, timestep_scaling 10). Honours rescale_betas_zero_snr.
    /// </summary>
    /// <exception cref="NotSupportedException">thresholding is requested.</exception>
    public LcmScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _schedule = NoiseSchedule.FromConfig(config, ConsistencyTimesteps.Defaults, supportsZeroSnrRescale: true, finiteTerminalSigma: false);
        _finalAlphaCumprod = config.SetAlphaToOne ?? true ? 1f : _schedule.AlphasCumprod[0];
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _originalSteps = config.OriginalInferenceSteps ?? 50;
        _clipRange = config.ClipSample ?? false ? (float)(config.ClipSampleRange ?? 1.0) : null;
        _timestepScaling = config.TimestepScaling ?? 10.0;
        ConfigGuards.RejectThresholding(config, nameof(LcmScheduler));
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _timesteps is null ? throw TimestepsNotSet.Error(nameof(LcmScheduler)) : _timestepValues;

    /// <inheritdoc/>
    public float InitNoiseSigma => 1f;

    private int[] Run => _timesteps ?? throw TimestepsNotSet.Error(nameof(LcmScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        _timesteps = ConsistencyTimesteps.Create(_schedule.TrainTimesteps, _originalSteps, inferenceSteps, nameof(LcmScheduler));
        _timestepValues = _timesteps.Select(t => (float)t).ToArray();
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    /// <remarks>Each step reads only the index it is given, so the begin index is only checked.</remarks>
    public void SetBeginIndex(int beginIndex) => NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(LcmScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(LcmScheduler), nameof(stepIndex));
        NoiseAdding.Alpha(original, noise, _schedule.AlphasCumprod[Run[i]], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var timesteps = Run;
        var timestep = timesteps[stepIndex];
        var last = stepIndex == timesteps.Length - 1;
        var previous = last ? timestep : timesteps[stepIndex + 1];
        var alphaProd = _schedule.AlphasCumprod[timestep];
        var alphaProdPrev = previous >= 0 ? _schedule.AlphasCumprod[previous] : _finalAlphaCumprod;
        float sqrtAlpha = MathF.Sqrt(alphaProd), sqrtBeta = MathF.Sqrt(1f - alphaProd);

        // Consistency boundary conditions: c_skip = σ_d²/(s² + σ_d²), c_out = s/√(s² + σ_d²), s = t·timestep_scaling.
        const float sigmaDataSquared = 0.25f;
        var scaled = timestep * (float)_timestepScaling;
        var cSkip = sigmaDataSquared / (scaled * scaled + sigmaDataSquared);
        var cOut = scaled / MathF.Sqrt(scaled * scaled + sigmaDataSquared);

        for (var k = 0; k < sample.Length; k++)
        {
            var x0 = AlphaSpace.OriginalSample(_prediction, modelOutput[k], sample[k], sqrtAlpha, sqrtBeta, _clipRange);
            sample[k] = cOut * x0 + cSkip * sample[k];
        }
        if (last)
            return;

        var noise = _noise.Draw(generator, sample.Length);
        float sqrtAlphaPrev = MathF.Sqrt(alphaProdPrev), sqrtBetaPrev = MathF.Sqrt(1f - alphaProdPrev);
        for (var k = 0; k < sample.Length; k++)
            sample[k] = sqrtAlphaPrev * sample[k] + sqrtBetaPrev * noise[k];
    }
}
