using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Heun's second-order method on the rectified-flow ODE, matching diffusers' <c>FlowMatchHeunDiscreteScheduler</c> (v0.31.0):
/// an Euler step from σᵢ to σᵢ₊₁ with the velocity there, then a correction with the average of the derivatives at both
/// ends. For n steps <see cref="Timesteps"/> lists 2n − 1 evaluations, t₀, t₁, t₁, …, tₙ₋₁, tₙ₋₁; the last step, to σ = 0,
/// is plain Euler.
/// </summary>
/// <remarks>
/// v0.31.0's Heun class has only <c>num_train_timesteps</c> and the static <c>shift</c>: no dynamic shifting (μ), no custom sigma
/// ramp (FluxPipeline cannot drive it), no Karras/exponential/beta sigmas. Its step arguments s_churn/s_tmin/s_tmax/s_noise
/// default to no churn (γ = 0), the only form here. In that form diffusers computes the derivative through the denoised
/// sample, d = (x − (x − v·σ))/σ, which is v up to float32 rounding; this class computes it the same way.
/// </remarks>
public sealed class FlowMatchHeunDiscreteScheduler : IFlowMatchScheduler, ISigmaSchedule
{
    private readonly double _sigmaMax;
    private readonly double _sigmaMin;
    private readonly ScratchBuffer _derivative = new();
    private readonly SampleCopy _firstDerivative = new();
    private readonly SampleCopy _stepStart = new();
    private float[] _first = [];
    private float[] _start = [];
    private float[]? _sigmas;
    private float[] _timesteps = [];
    private float _dt;
    private int _nextStep;

    /// <summary>Builds the scheduler; absent keys take diffusers' defaults (T = 1000, shift 1.0).</summary>
    /// <exception cref="NotSupportedException">The config sets use_dynamic_shifting, which v0.31.0's Heun class lacks.</exception>
    public FlowMatchHeunDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.UseDynamicShifting == true)
            throw new NotSupportedException(
                $"{nameof(FlowMatchHeunDiscreteScheduler)}: use_dynamic_shifting is not part of diffusers' FlowMatchHeunDiscreteScheduler (v0.31.0); " +
                "use FlowMatchEulerDiscreteScheduler for a dynamically shifted model (FLUX.1-dev).");
        TrainTimesteps = config.NumTrainTimesteps ?? 1000;
        Shift = config.Shift ?? 1.0;
        (_sigmaMax, _sigmaMin) = FlowMatchShift.TrainingRange(TrainTimesteps, Shift, dynamic: false);
    }

    /// <summary>Config <c>num_train_timesteps</c> T: timestep = σ·T.</summary>
    public int TrainTimesteps { get; }

    /// <summary>Config <c>shift</c>.</summary>
    public double Shift { get; }

    /// <summary>Always false: v0.31.0's Heun class has no dynamic shifting.</summary>
    public bool UseDynamicShifting => false;

    /// <inheritdoc/>
    public int Order => 2;

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _sigmas is null ? throw TimestepsNotSet.Error(nameof(FlowMatchHeunDiscreteScheduler)) : _timesteps;

    /// <summary>σ at each evaluation (σ₀, σ₁, σ₁, …, σₙ₋₁, σₙ₋₁), then 0.</summary>
    public IReadOnlyList<float> Sigmas => Run;

    /// <summary>1: flow matching starts from unit Gaussian noise.</summary>
    public float InitNoiseSigma => 1f;

    private float[] Run => _sigmas ?? throw TimestepsNotSet.Error(nameof(FlowMatchHeunDiscreteScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps) => SetTimesteps(inferenceSteps, null);

    /// <inheritdoc/>
    /// <remarks>μ is ignored: this class always shifts statically (diffusers' Heun <c>set_timesteps</c> takes no μ).</remarks>
    public void SetTimesteps(int inferenceSteps, double? mu)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inferenceSteps, 1);
        var even = FlowMatchShift.EvenSigmas(TrainTimesteps, _sigmaMax, _sigmaMin, inferenceSteps);
        var (run, runTimesteps) = FlowMatchShift.Finish(even.Select(s => FlowMatchShift.Static(Shift, s)).ToArray(), TrainTimesteps);
        // σ₀, then σ₁ … σₙ₋₁ twice each (Euler evaluation, correction evaluation), then the final 0.
        var sigmas = new float[2 * inferenceSteps];
        var timesteps = new float[2 * inferenceSteps - 1];
        sigmas[0] = run[0];
        timesteps[0] = runTimesteps[0];
        for (var i = 1; i < inferenceSteps; i++)
        {
            sigmas[2 * i - 1] = sigmas[2 * i] = run[i];
            timesteps[2 * i - 1] = timesteps[2 * i] = runTimesteps[i];
        }
        sigmas[^1] = run[^1];
        _sigmas = sigmas;
        _timesteps = timesteps;
        _nextStep = 0;
    }

    /// <summary>Copies the sample: flow-matching models take it unscaled.</summary>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    public void SetBeginIndex(int beginIndex) =>
        _nextStep = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(FlowMatchHeunDiscreteScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void ScaleNoise(ReadOnlySpan<float> sample, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(FlowMatchHeunDiscreteScheduler), nameof(stepIndex));
        NoiseAdding.Flow(sample, noise, Run[i], destination);
    }

    /// <summary>Flow matching's img2img noising, <see cref="ScaleNoise"/>: σ·ε + (1 − σ)·x₀.</summary>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination) =>
        ScaleNoise(original, noise, stepIndex, destination);

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var sigmas = Run;
        StepOrder.Check(stepIndex, ref _nextStep, nameof(FlowMatchHeunDiscreteScheduler));
        var derivative = _derivative.Get(sample.Length);
        if (stepIndex % 2 == 0)
        {
            // Euler evaluation at σᵢ: x₀ = x − v·σᵢ, d = (x − x₀)/σᵢ, Δ = σᵢ₊₁ − σᵢ; keep d, Δ and x for the correction.
            var sigma = sigmas[stepIndex];
            Derivative(modelOutput, sample, sigma, derivative);
            _dt = sigmas[stepIndex + 1] - sigma;
            _first = _firstDerivative.Keep(derivative);
            _start = _stepStart.Keep(sample);
            for (var k = 0; k < sample.Length; k++)
                sample[k] += derivative[k] * _dt;
        }
        else
        {
            // Correction at σᵢ₊₁: d' = (x̃ − x̃₀)/σᵢ₊₁, then x ← x_start + ½(d + d')·Δ.
            var sigmaNext = sigmas[stepIndex];
            Derivative(modelOutput, sample, sigmaNext, derivative);
            for (var k = 0; k < sample.Length; k++)
                sample[k] = _start[k] + 0.5f * (_first[k] + derivative[k]) * _dt;
        }
    }

    private static void Derivative(ReadOnlySpan<float> modelOutput, ReadOnlySpan<float> sample, float sigma, Span<float> derivative)
    {
        for (var k = 0; k < sample.Length; k++)
        {
            var denoised = sample[k] - modelOutput[k] * sigma;
            derivative[k] = (sample[k] - denoised) / sigma;
        }
    }
}
