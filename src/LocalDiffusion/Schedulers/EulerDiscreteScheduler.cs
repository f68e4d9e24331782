using System.Numerics.Tensors;
using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Euler's method on the probability-flow ODE in sigma space (Karras et al. 2022, Algorithm 2 without churn),
/// matching diffusers' <c>EulerDiscreteScheduler</c>: x ← x + (x − x₀)/σᵢ · (σᵢ₊₁ − σᵢ).
/// </summary>
public sealed class EulerDiscreteScheduler : IScheduler, ISigmaSchedule
{
    private readonly NoiseSchedule _schedule;
    private readonly PredictionType _prediction;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly SigmaRamp _ramp;
    private readonly double? _sigmaMin;
    private readonly double? _sigmaMax;
    private readonly FinalSigmasType _finalSigma;
    private DiscreteSigmaSchedule? _run;
    private readonly ScratchBuffer _derivative = new();

    /// <summary>Builds the scheduler; absent keys take diffusers' <c>EulerDiscreteScheduler</c> defaults (linear 0.0001→0.02, linspace spacing).</summary>
    /// <exception cref="NotSupportedException">The config asks for a diffusers option this port does not implement.</exception>
    public EulerDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: true, finiteTerminalSigma: true);
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _spacing = config.TimestepSpacing ?? TimestepSpacing.Linspace;
        _stepsOffset = config.StepsOffset ?? 0;
        _ramp = SigmaRampOption.FromConfig(config, nameof(EulerDiscreteScheduler));
        _sigmaMin = config.SigmaMin;
        _sigmaMax = config.SigmaMax;
        _finalSigma = config.FinalSigmasType ?? FinalSigmasType.Zero;
        if ((config.InterpolationType ?? InterpolationType.Linear) != InterpolationType.Linear)
            throw new NotSupportedException($"{nameof(EulerDiscreteScheduler)}: interpolation_type log_linear is not supported.");
        if ((config.TimestepType ?? TimestepType.Discrete) != TimestepType.Discrete)
            throw new NotSupportedException($"{nameof(EulerDiscreteScheduler)}: timestep_type continuous is not supported.");
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => Run.Timesteps;

    /// <inheritdoc/>
    public IReadOnlyList<float> Sigmas => Run.Sigmas;

    /// <inheritdoc/>
    public float InitNoiseSigma => Run.InitNoiseSigma(_spacing);

    private DiscreteSigmaSchedule Run => _run ?? throw TimestepsNotSet.Error(nameof(EulerDiscreteScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps) =>
        _run = DiscreteSigmaSchedule.Create(_schedule, _spacing, _stepsOffset, inferenceSteps, _ramp, _sigmaMin, _sigmaMax, _finalSigma);

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) =>
        SigmaSpace.ScaleInput(sample, destination, Run.Sigmas[stepIndex]);

    /// <inheritdoc/>
    /// <remarks>Each step reads only the index it is given, so the begin index is only checked.</remarks>
    public void SetBeginIndex(int beginIndex) => NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(EulerDiscreteScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(EulerDiscreteScheduler), nameof(stepIndex));
        NoiseAdding.Sigma(original, noise, Run.Sigmas[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var sigma = Run.Sigmas[stepIndex];
        var derivative = _derivative.Get(sample.Length);
        SigmaSpace.Denoise(_prediction, modelOutput, sample, sigma, derivative);
        SigmaSpace.Derivative(sample, derivative, sigma);
        // x ← x + d·(σᵢ₊₁ − σᵢ)
        TensorPrimitives.Multiply(derivative, Run.Sigmas[stepIndex + 1] - sigma, derivative);
        TensorPrimitives.Add(sample, derivative, sample);
    }

}
