using System.Numerics.Tensors;
using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// DPM-Solver-2 in sigma space (k-diffusion's <c>sample_dpm_2</c>, Karras et al. 2022 Algorithm 1 with a midpoint),
/// matching diffusers' <c>KDPM2DiscreteScheduler</c> (AUTOMATIC1111's "DPM2"): from σᵢ an Euler step to the
/// log-space midpoint σ_mid = √(σᵢ·σᵢ₊₁), a UNet evaluation there, then the full step x ← x + d_mid·(σᵢ₊₁ − σᵢ).
/// For n inference steps <see cref="Timesteps"/> lists 2n − 1 evaluations: t₀, t_mid₁, t₁, …, t_midₙ₋₁, tₙ₋₁
/// (diffusers pairs each step's midpoint with the next step; the last step, to σ = 0, is plain Euler).
/// </summary>
public sealed class KDpm2DiscreteScheduler : IScheduler, ISigmaSchedule
{
    private readonly SecondOrderSigmaOptions _options;
    private readonly ScratchBuffer _derivative = new();
    private readonly ScratchBuffer _stepStart = new();
    private float[]? _sigmas;
    private float[] _sigmasMidpoint = [];
    private float[] _timesteps = [];
    private float _initNoiseSigma;
    private int _nextStep;

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>KDPM2DiscreteScheduler</c> defaults (linear 0.00085→0.012,
    /// linspace spacing). Honours use_karras_sigmas, use_exponential_sigmas and use_beta_sigmas (with sigma_min/sigma_max when present).
    /// </summary>
    /// <exception cref="NotSupportedException">prediction_type is "sample", which diffusers' class does not implement either.</exception>
    /// <exception cref="ArgumentException">More than one sigma ramp is switched on.</exception>
    public KDpm2DiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _options = SecondOrderSigmaOptions.FromConfig(config, nameof(KDpm2DiscreteScheduler));
        if (_options.Prediction == PredictionType.Sample)
            throw new NotSupportedException($"{nameof(KDpm2DiscreteScheduler)}: prediction_type \"sample\" is not supported (diffusers does not implement it either).");
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _sigmas is null ? throw TimestepsNotSet.Error(nameof(KDpm2DiscreteScheduler)) : _timesteps;

    /// <summary>σ at the start of the step each evaluation belongs to (σ₀, σ₁, σ₁, …, σₙ₋₁, σₙ₋₁), then 0.</summary>
    public IReadOnlyList<float> Sigmas => new ArraySegment<float>(Run, 0, _timesteps.Length + 1);

    /// <inheritdoc/>
    public float InitNoiseSigma => _sigmas is null ? throw TimestepsNotSet.Error(nameof(KDpm2DiscreteScheduler)) : _initNoiseSigma;

    private float[] Run => _sigmas ?? throw TimestepsNotSet.Error(nameof(KDpm2DiscreteScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        var run = Dpm2Schedule.Create(_options, inferenceSteps);
        var sigmas = run.Sigmas;
        // Midpoint of each σ with the one before it (diffusers rolls the array; the first entry is never read).
        var midpoints = new float[sigmas.Length];
        for (var i = 0; i < sigmas.Length; i++)
            midpoints[i] = Dpm2Schedule.LogMidpoint(sigmas[i], sigmas[(i + sigmas.Length - 1) % sigmas.Length]);

        var logTrainingSigmas = SigmaSchedules.Log(_options.Schedule.Sigmas());
        var timesteps = new float[2 * inferenceSteps - 1];
        timesteps[0] = run.Timesteps[0];
        for (var i = 1; i < inferenceSteps; i++)
        {
            timesteps[2 * i - 1] = Dpm2Schedule.TimestepOf(midpoints[i], logTrainingSigmas);
            timesteps[2 * i] = run.Timesteps[i];
        }
        _sigmas = Dpm2Schedule.Interleave(sigmas);
        _sigmasMidpoint = Dpm2Schedule.Interleave(midpoints);
        _timesteps = timesteps;
        _initNoiseSigma = run.InitNoiseSigma(_options.Spacing);
        _nextStep = 0;
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) =>
        SigmaSpace.ScaleInput(sample, destination, stepIndex % 2 == 0 ? Run[stepIndex] : _sigmasMidpoint[stepIndex]);

    /// <inheritdoc/>
    public int Order => 2;

    /// <inheritdoc/>
    public void SetBeginIndex(int beginIndex) => _nextStep = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(KDpm2DiscreteScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(KDpm2DiscreteScheduler), nameof(stepIndex));
        NoiseAdding.Sigma(original, noise, Run[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var sigmas = Run;
        StepOrder.Check(stepIndex, ref _nextStep, nameof(KDpm2DiscreteScheduler));
        var derivative = _derivative.Get(sample.Length);
        var stepStart = _stepStart.Get(sample.Length);
        float dt;
        if (stepIndex % 2 == 0)
        {
            // At σᵢ: d = (x − x₀)/σᵢ, Euler to the midpoint; keep x for the full step.
            var sigma = sigmas[stepIndex];
            SigmaSpace.Denoise(_options.Prediction, modelOutput, sample, sigma, derivative);
            SigmaSpace.Derivative(sample, derivative, sigma);
            dt = _sigmasMidpoint[stepIndex + 1] - sigma;
            sample.CopyTo(stepStart);
        }
        else
        {
            // At the midpoint: d_mid = (x_mid − x₀)/σ_mid, then x ← x_start + d_mid·(σᵢ₊₁ − σᵢ).
            var sigmaMidpoint = _sigmasMidpoint[stepIndex];
            SigmaSpace.Denoise(_options.Prediction, modelOutput, sample, sigmaMidpoint, derivative);
            SigmaSpace.Derivative(sample, derivative, sigmaMidpoint);
            dt = sigmas[stepIndex] - sigmas[stepIndex - 1];
            stepStart.CopyTo(sample);
        }
        TensorPrimitives.Multiply(derivative, dt, derivative);
        TensorPrimitives.Add(sample, derivative, sample);
    }
}
