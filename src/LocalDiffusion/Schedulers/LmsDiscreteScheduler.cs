using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Linear multistep (k-diffusion's <c>sample_lms</c>, order 4), matching diffusers' <c>LMSDiscreteScheduler</c>:
/// x ← x + Σⱼ cⱼ·dᵢ₋ⱼ over the last (up to 4) derivatives d = (x − x₀)/σ, with cⱼ the integrals of the Lagrange
/// polynomials through those sigmas over [σᵢ, σᵢ₊₁].
/// </summary>
public sealed class LmsDiscreteScheduler : IScheduler, ISigmaSchedule
{
    private const int Order = 4;
    private readonly NoiseSchedule _schedule;
    private readonly PredictionType _prediction;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly SigmaRamp _ramp;
    private readonly ModelOutputHistory _derivatives = new(Order);
    private DiscreteSigmaSchedule? _run;
    private int _nextStep;

    /// <summary>Builds the scheduler; absent keys take diffusers' <c>LMSDiscreteScheduler</c> defaults (linear 0.0001→0.02, linspace spacing).</summary>
    /// <exception cref="NotSupportedException">The config asks for a diffusers option this port does not implement.</exception>
    public LmsDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: false, finiteTerminalSigma: false);
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _spacing = config.TimestepSpacing ?? TimestepSpacing.Linspace;
        _stepsOffset = config.StepsOffset ?? 0;
        _ramp = SigmaRampOption.FromConfig(config, nameof(LmsDiscreteScheduler));
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => Run.Timesteps;

    /// <inheritdoc/>
    public IReadOnlyList<float> Sigmas => Run.Sigmas;

    /// <inheritdoc/>
    public float InitNoiseSigma => Run.InitNoiseSigma(_spacing);

    private DiscreteSigmaSchedule Run => _run ?? throw TimestepsNotSet.Error(nameof(LmsDiscreteScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        // diffusers' LMS Karras ramp spans the interpolated sigmas and ignores sigma_min/sigma_max.
        _run = DiscreteSigmaSchedule.Create(_schedule, _spacing, _stepsOffset, inferenceSteps, _ramp, null, null, FinalSigmasType.Zero);
        _derivatives.Clear();
        _nextStep = 0;
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) =>
        SigmaSpace.ScaleInput(sample, destination, Run.Sigmas[stepIndex]);

    /// <inheritdoc/>
    public void SetBeginIndex(int beginIndex) => _nextStep = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(LmsDiscreteScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(LmsDiscreteScheduler), nameof(stepIndex));
        NoiseAdding.Sigma(original, noise, Run.Sigmas[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        StepOrder.Check(stepIndex, ref _nextStep, nameof(LmsDiscreteScheduler));
        var sigmas = Run.Sigmas;
        var derivative = _derivatives.Rent(sample.Length);
        SigmaSpace.Denoise(_prediction, modelOutput, sample, sigmas[stepIndex], derivative);
        SigmaSpace.Derivative(sample, derivative, sigmas[stepIndex]);
        _derivatives.Add(derivative);

        // diffusers sums coefficient·derivative newest first in float32, then adds the sum to the sample.
        var order = Math.Min(stepIndex + 1, Order);
        Span<float> coefficients = stackalloc float[order];
        for (var j = 0; j < order; j++)
            coefficients[j] = (float)LmsCoefficients.Coefficient(sigmas, order, stepIndex, j);
        // After a begin index (img2img) fewer derivatives than the order exist yet: diffusers zips the coefficients with
        // the derivatives it has, so the extra coefficients are dropped, not the order lowered.
        var terms = Math.Min(order, _derivatives.Count);
        for (var k = 0; k < sample.Length; k++)
        {
            var sum = 0f;
            for (var j = 0; j < terms; j++)
                sum += coefficients[j] * _derivatives[^(j + 1)][k];
            sample[k] += sum;
        }
    }
}
