using LocalDiffusion.Randomness;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Trajectory consistency distillation sampling (Zheng et al. 2024, strategic stochastic sampling), matching diffusers'
/// <c>TCDScheduler</c>: from t the model's x₀ and ε give the sample at the intermediate s = ⌊(1 − γ)·t_prev⌋,
/// x_s = √ᾱ_s·x₀ + √(1 − ᾱ_s)·ε, which is then re-noised forward to t_prev with fresh noise:
/// x ← √(ᾱ_prev/ᾱ_s)·x_s + √(1 − ᾱ_prev/ᾱ_s)·z. γ (<see cref="Eta"/>, diffusers' step argument <c>eta</c>) = 0 is
/// deterministic; the last step returns x_s. Meant for TCD-distilled UNets.
/// </summary>
public sealed class TcdScheduler : IScheduler
{
    private readonly NoiseSchedule _schedule;
    private readonly PredictionType _prediction;
    private readonly int _originalSteps;
    private readonly NoiseBuffer _noise = new();
    private int[]? _timesteps;
    private float[] _timestepValues = [];

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>TCDScheduler</c> defaults (scaled_linear 0.00085→0.012,
    /// original_inference_steps 50). Honours rescale_betas_zero_snr.
    /// </summary>
    /// <param name="config">The scheduler config.</param>
    /// <param name="eta">γ in [0, 1], the stochasticity (diffusers' default 0.3).</param>
    /// <exception cref="NotSupportedException">thresholding is requested.</exception>
    public TcdScheduler(SchedulerConfig config, double eta = 0.3)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (eta is < 0 or > 1)
            throw new InvalidRequestException(nameof(eta), eta, null, $"TcdScheduler: {nameof(eta)} (gamma) must be between 0 and 1.");
        Eta = eta;
        _schedule = NoiseSchedule.FromConfig(config, ConsistencyTimesteps.Defaults, supportsZeroSnrRescale: true, finiteTerminalSigma: false);
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _originalSteps = config.OriginalInferenceSteps ?? 50;
        ConfigGuards.RejectThresholding(config, nameof(TcdScheduler));
    }

    /// <summary>γ, the share of each step that is re-noised (0 deterministic, 1 fully stochastic).</summary>
    public double Eta { get; }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _timesteps is null ? throw TimestepsNotSet.Error(nameof(TcdScheduler)) : _timestepValues;

    /// <inheritdoc/>
    public float InitNoiseSigma => 1f;

    private int[] Run => _timesteps ?? throw TimestepsNotSet.Error(nameof(TcdScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        _timesteps = ConsistencyTimesteps.Create(_schedule.TrainTimesteps, _originalSteps, inferenceSteps, nameof(TcdScheduler));
        _timestepValues = _timesteps.Select(t => (float)t).ToArray();
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    /// <remarks>Each step reads only the index it is given, so the begin index is only checked.</remarks>
    public void SetBeginIndex(int beginIndex) => NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(TcdScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(TcdScheduler), nameof(stepIndex));
        NoiseAdding.Alpha(original, noise, _schedule.AlphasCumprod[Run[i]], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var timesteps = Run;
        var last = stepIndex == timesteps.Length - 1;
        var previous = last ? 0 : timesteps[stepIndex + 1];
        // torch: floor(float32(1 − γ) · t_prev).
        var intermediate = (int)MathF.Floor((float)(1 - Eta) * previous);
        var alphaProd = _schedule.AlphasCumprod[timesteps[stepIndex]];
        var alphaProdPrev = _schedule.AlphasCumprod[previous];
        var alphaProdS = _schedule.AlphasCumprod[intermediate];
        float sqrtAlpha = MathF.Sqrt(alphaProd), sqrtBeta = MathF.Sqrt(1f - alphaProd);
        float sqrtAlphaS = MathF.Sqrt(alphaProdS), sqrtBetaS = MathF.Sqrt(1f - alphaProdS);

        for (var k = 0; k < sample.Length; k++)
        {
            var (x0, epsilon) = AlphaSpace.OriginalSampleAndNoise(_prediction, modelOutput[k], sample[k], sqrtAlpha, sqrtBeta);
            sample[k] = sqrtAlphaS * x0 + sqrtBetaS * epsilon;
        }
        if (Eta <= 0 || last)
            return;

        var noise = _noise.Draw(generator, sample.Length);
        var ratio = alphaProdPrev / alphaProdS;
        float keep = MathF.Sqrt(ratio), fresh = MathF.Sqrt(1f - ratio);
        for (var k = 0; k < sample.Length; k++)
            sample[k] = keep * sample[k] + fresh * noise[k];
    }
}
