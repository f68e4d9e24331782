using System.Numerics.Tensors;
using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Heun's second-order method on the probability-flow ODE (Karras et al. 2022, Algorithm 1 without churn), matching
/// diffusers' <c>HeunDiscreteScheduler</c>: an Euler step from σᵢ to σᵢ₊₁, then a correction with the average of the
/// derivatives at both ends. Each step but the last takes two UNet evaluations, so for n inference steps
/// <see cref="Timesteps"/> lists 2n − 1 evaluations: t₀, t₁, t₁, …, tₙ₋₁, tₙ₋₁ (the last step, to σ = 0, is plain Euler).
/// </summary>
public sealed class HeunDiscreteScheduler : IScheduler, ISigmaSchedule
{
    private readonly SecondOrderSigmaOptions _options;
    private readonly float? _clipRange;
    private readonly ScratchBuffer _derivative = new();
    private readonly ScratchBuffer _firstDerivative = new();
    private readonly ScratchBuffer _stepStart = new();
    private float[]? _sigmas;
    private float[] _timesteps = [];
    private float _initNoiseSigma;
    private float _dt;
    private int _nextStep;

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>HeunDiscreteScheduler</c> defaults (linear 0.00085→0.012,
    /// linspace spacing, clip_sample false). Honours use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas
    /// (with sigma_min/sigma_max when the config has them), clip_sample and clip_sample_range.
    /// </summary>
    /// <exception cref="ArgumentException">More than one sigma ramp is switched on.</exception>
    public HeunDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _options = SecondOrderSigmaOptions.FromConfig(config, nameof(HeunDiscreteScheduler));
        _clipRange = config.ClipSample ?? false ? (float)(config.ClipSampleRange ?? 1.0) : null;
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _sigmas is null ? throw TimestepsNotSet.Error(nameof(HeunDiscreteScheduler)) : _timesteps;

    /// <summary>σ at each evaluation (σ₀, σ₁, σ₁, …, σₙ₋₁, σₙ₋₁), then 0.</summary>
    public IReadOnlyList<float> Sigmas => Run;

    /// <inheritdoc/>
    public float InitNoiseSigma => _sigmas is null ? throw TimestepsNotSet.Error(nameof(HeunDiscreteScheduler)) : _initNoiseSigma;

    private float[] Run => _sigmas ?? throw TimestepsNotSet.Error(nameof(HeunDiscreteScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        var run = _options.CreateRun(inferenceSteps);
        // σ₀, then σ₁ … σₙ₋₁ twice each (Euler evaluation, correction evaluation), then the final 0.
        var sigmas = new float[2 * inferenceSteps];
        var timesteps = new float[2 * inferenceSteps - 1];
        sigmas[0] = run.Sigmas[0];
        timesteps[0] = run.Timesteps[0];
        for (var i = 1; i < inferenceSteps; i++)
        {
            sigmas[2 * i - 1] = sigmas[2 * i] = run.Sigmas[i];
            timesteps[2 * i - 1] = timesteps[2 * i] = run.Timesteps[i];
        }
        sigmas[^1] = run.Sigmas[^1];
        _sigmas = sigmas;
        _timesteps = timesteps;
        _initNoiseSigma = run.InitNoiseSigma(_options.Spacing);
        _nextStep = 0;
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) =>
        SigmaSpace.ScaleInput(sample, destination, Run[stepIndex]);

    /// <inheritdoc/>
    public int Order => 2;

    /// <inheritdoc/>
    public void SetBeginIndex(int beginIndex) => _nextStep = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(HeunDiscreteScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(HeunDiscreteScheduler), nameof(stepIndex));
        NoiseAdding.Sigma(original, noise, Run[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var sigmas = Run;
        StepOrder.Check(stepIndex, ref _nextStep, nameof(HeunDiscreteScheduler));
        var derivative = _derivative.Get(sample.Length);
        var firstDerivative = _firstDerivative.Get(sample.Length);
        var stepStart = _stepStart.Get(sample.Length);
        if (stepIndex % 2 == 0)
        {
            // Euler evaluation at σᵢ: d = (x − x₀)/σᵢ, x ← x + d·(σᵢ₊₁ − σᵢ); keep d, the step and x for the correction.
            var sigma = sigmas[stepIndex];
            Denoise(modelOutput, sample, sigma, derivative);
            SigmaSpace.Derivative(sample, derivative, sigma);
            _dt = sigmas[stepIndex + 1] - sigma;
            derivative.CopyTo(firstDerivative);
            sample.CopyTo(stepStart);
        }
        else
        {
            // Correction at σᵢ₊₁: d' = (x̃ − x₀)/σᵢ₊₁, then x ← x_start + (d + d')/2 · (σᵢ₊₁ − σᵢ).
            var sigmaNext = sigmas[stepIndex];
            Denoise(modelOutput, sample, sigmaNext, derivative);
            SigmaSpace.Derivative(sample, derivative, sigmaNext);
            TensorPrimitives.Add(firstDerivative, derivative, derivative);
            TensorPrimitives.Divide(derivative, 2f, derivative);
            stepStart.CopyTo(sample);
        }
        TensorPrimitives.Multiply(derivative, _dt, derivative);
        TensorPrimitives.Add(sample, derivative, sample);
    }

    private void Denoise(ReadOnlySpan<float> modelOutput, ReadOnlySpan<float> sample, float sigma, Span<float> denoised)
    {
        SigmaSpace.Denoise(_options.Prediction, modelOutput, sample, sigma, denoised);
        if (_clipRange is { } range)
            TensorPrimitives.Clamp(denoised, -range, range, denoised);
    }
}
