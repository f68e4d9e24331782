using System.Numerics.Tensors;
using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Ancestral DPM-Solver-2 (k-diffusion's <c>sample_dpm_2_ancestral</c>), matching diffusers'
/// <c>KDPM2AncestralDiscreteScheduler</c> (AUTOMATIC1111's "DPM2 a"): each step splits σᵢ₊₁ into a deterministic part
/// σ_down and fresh noise σ_up (σ_up = √(σᵢ₊₁²(σᵢ² − σᵢ₊₁²)/σᵢ²), σ_down = √(σᵢ₊₁² − σ_up²)), takes a DPM-Solver-2 step
/// from σᵢ to σ_down through the log-space midpoint √(σᵢ·σ_down), and adds σ_up·z with z drawn from the generator.
/// For n inference steps <see cref="Timesteps"/> lists 2n − 1 evaluations: t₀, t_mid₀, t₁, …, t_midₙ₋₂, tₙ₋₁.
/// </summary>
public sealed class KDpm2AncestralDiscreteScheduler : IScheduler, ISigmaSchedule
{
    private readonly SecondOrderSigmaOptions _options;
    private readonly ScratchBuffer _derivative = new();
    private readonly ScratchBuffer _stepStart = new();
    private readonly NoiseBuffer _noise = new();
    private float[]? _sigmas;
    private float[] _sigmasMidpoint = [];
    private float[] _sigmasUp = [];
    private float[] _sigmasDown = [];
    private float[] _timesteps = [];
    private float _initNoiseSigma;
    private int _nextStep;

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>KDPM2AncestralDiscreteScheduler</c> defaults (linear
    /// 0.00085→0.012, linspace spacing). Honours use_karras_sigmas, use_exponential_sigmas and use_beta_sigmas.
    /// </summary>
    /// <exception cref="NotSupportedException">prediction_type is "sample", which diffusers' class does not implement either.</exception>
    /// <exception cref="ArgumentException">More than one sigma ramp is switched on.</exception>
    public KDpm2AncestralDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _options = SecondOrderSigmaOptions.FromConfig(config, nameof(KDpm2AncestralDiscreteScheduler));
        if (_options.Prediction == PredictionType.Sample)
            throw new NotSupportedException($"{nameof(KDpm2AncestralDiscreteScheduler)}: prediction_type \"sample\" is not supported (diffusers does not implement it either).");
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _sigmas is null ? throw TimestepsNotSet.Error(nameof(KDpm2AncestralDiscreteScheduler)) : _timesteps;

    /// <summary>σ at the start of the step each evaluation belongs to (σ₀, σ₁, σ₁, …, σₙ₋₁, σₙ₋₁), then 0.</summary>
    public IReadOnlyList<float> Sigmas => new ArraySegment<float>(Run, 0, _timesteps.Length + 1);

    /// <inheritdoc/>
    public float InitNoiseSigma => _sigmas is null ? throw TimestepsNotSet.Error(nameof(KDpm2AncestralDiscreteScheduler)) : _initNoiseSigma;

    private float[] Run => _sigmas ?? throw TimestepsNotSet.Error(nameof(KDpm2AncestralDiscreteScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        var run = Dpm2Schedule.Create(_options, inferenceSteps);
        var sigmas = run.Sigmas;
        var count = sigmas.Length;
        float[] up = new float[count], down = new float[count], midpoints = new float[count];
        for (var i = 0; i < count; i++)
        {
            var s = sigmas[i];
            var next = i + 1 < count ? sigmas[i + 1] : 0f;
            up[i] = MathF.Sqrt(next * next * (s * s - next * next) / (s * s));
            down[i] = i + 1 < count ? MathF.Sqrt(next * next - up[i] * up[i]) : 0f;
            // The last two steps go straight to σ = 0, so their midpoints are 0.
            midpoints[i] = i >= count - 2 ? 0f : Dpm2Schedule.LogMidpoint(s, down[i]);
        }

        var logTrainingSigmas = SigmaSchedules.Log(_options.Schedule.Sigmas());
        var timesteps = new float[2 * inferenceSteps - 1];
        timesteps[0] = run.Timesteps[0];
        for (var i = 1; i < inferenceSteps; i++)
        {
            timesteps[2 * i - 1] = Dpm2Schedule.TimestepOf(midpoints[i - 1], logTrainingSigmas);
            timesteps[2 * i] = run.Timesteps[i];
        }
        _sigmas = Dpm2Schedule.Interleave(sigmas);
        _sigmasMidpoint = Dpm2Schedule.Interleave(midpoints);
        _sigmasUp = Dpm2Schedule.Interleave(up);
        _sigmasDown = Dpm2Schedule.Interleave(down);
        _timesteps = timesteps;
        _initNoiseSigma = run.InitNoiseSigma(_options.Spacing);
        _nextStep = 0;
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) =>
        SigmaSpace.ScaleInput(sample, destination, stepIndex % 2 == 0 ? Run[stepIndex] : _sigmasMidpoint[stepIndex - 1]);

    /// <inheritdoc/>
    public int Order => 2;

    /// <inheritdoc/>
    public void SetBeginIndex(int beginIndex) => _nextStep = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(KDpm2AncestralDiscreteScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(KDpm2AncestralDiscreteScheduler), nameof(stepIndex));
        NoiseAdding.Sigma(original, noise, Run[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var sigmas = Run;
        StepOrder.Check(stepIndex, ref _nextStep, nameof(KDpm2AncestralDiscreteScheduler));
        var derivative = _derivative.Get(sample.Length);
        var stepStart = _stepStart.Get(sample.Length);
        if (stepIndex % 2 == 0)
        {
            // At σᵢ: d = (x − x₀)/σᵢ, Euler to the midpoint; keep x for the full step.
            var sigma = sigmas[stepIndex];
            SigmaSpace.Denoise(_options.Prediction, modelOutput, sample, sigma, derivative);
            SigmaSpace.Derivative(sample, derivative, sigma);
            TensorPrimitives.Multiply(derivative, _sigmasMidpoint[stepIndex] - sigma, derivative);
            sample.CopyTo(stepStart);
            TensorPrimitives.Add(sample, derivative, sample);
            return;
        }

        // At the midpoint: d_mid = (x_mid − x₀)/σ_mid, x ← x_start + d_mid·(σ_down − σᵢ) + σ_up·z.
        ArgumentNullException.ThrowIfNull(generator);
        var sigmaMidpoint = _sigmasMidpoint[stepIndex - 1];
        SigmaSpace.Denoise(_options.Prediction, modelOutput, sample, sigmaMidpoint, derivative);
        SigmaSpace.Derivative(sample, derivative, sigmaMidpoint);
        TensorPrimitives.Multiply(derivative, _sigmasDown[stepIndex - 1] - sigmas[stepIndex - 1], derivative);
        TensorPrimitives.Add(stepStart, derivative, sample);
        var noise = _noise.Draw(generator, sample.Length);
        TensorPrimitives.Multiply(noise, _sigmasUp[stepIndex - 1], noise);
        TensorPrimitives.Add(sample, noise, sample);
    }
}
