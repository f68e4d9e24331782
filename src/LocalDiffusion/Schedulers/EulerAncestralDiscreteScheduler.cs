using System.Numerics.Tensors;
using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Ancestral Euler sampling (k-diffusion's <c>sample_euler_ancestral</c>), matching diffusers'
/// <c>EulerAncestralDiscreteScheduler</c>: an Euler step down to σ_down, then fresh noise of scale σ_up, with
/// σ_up = √(σᵢ₊₁²(σᵢ² − σᵢ₊₁²)/σᵢ²) and σ_down = √(σᵢ₊₁² − σ_up²).
/// </summary>
public sealed class EulerAncestralDiscreteScheduler : IScheduler, ISigmaSchedule
{
    private readonly NoiseSchedule _schedule;
    private readonly PredictionType _prediction;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly ScratchBuffer _derivative = new();
    private readonly NoiseBuffer _noise = new();
    private DiscreteSigmaSchedule? _run;

    /// <summary>Builds the scheduler; absent keys take diffusers' <c>EulerAncestralDiscreteScheduler</c> defaults (linear 0.0001→0.02, linspace spacing).</summary>
    /// <exception cref="NotSupportedException">prediction_type is "sample", which diffusers' class rejects too.</exception>
    public EulerAncestralDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: true, finiteTerminalSigma: true);
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        if (_prediction == PredictionType.Sample)
            throw new NotSupportedException($"{nameof(EulerAncestralDiscreteScheduler)}: prediction_type \"sample\" is not supported (diffusers does not implement it either).");
        _spacing = config.TimestepSpacing ?? TimestepSpacing.Linspace;
        _stepsOffset = config.StepsOffset ?? 0;
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => Run.Timesteps;

    /// <inheritdoc/>
    public IReadOnlyList<float> Sigmas => Run.Sigmas;

    /// <inheritdoc/>
    public float InitNoiseSigma => Run.InitNoiseSigma(_spacing);

    private DiscreteSigmaSchedule Run => _run ?? throw TimestepsNotSet.Error(nameof(EulerAncestralDiscreteScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps) =>
        _run = DiscreteSigmaSchedule.Create(_schedule, _spacing, _stepsOffset, inferenceSteps, SigmaRamp.None, null, null, FinalSigmasType.Zero);

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) =>
        SigmaSpace.ScaleInput(sample, destination, Run.Sigmas[stepIndex]);

    /// <inheritdoc/>
    /// <remarks>Each step reads only the index it is given, so the begin index is only checked.</remarks>
    public void SetBeginIndex(int beginIndex) => NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(EulerAncestralDiscreteScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(EulerAncestralDiscreteScheduler), nameof(stepIndex));
        NoiseAdding.Sigma(original, noise, Run.Sigmas[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var sigma = Run.Sigmas[stepIndex];
        var sigmaTo = Run.Sigmas[stepIndex + 1];
        var sigmaUp = MathF.Sqrt(sigmaTo * sigmaTo * (sigma * sigma - sigmaTo * sigmaTo) / (sigma * sigma));
        var sigmaDown = MathF.Sqrt(sigmaTo * sigmaTo - sigmaUp * sigmaUp);

        var derivative = _derivative.Get(sample.Length);
        SigmaSpace.Denoise(_prediction, modelOutput, sample, sigma, derivative);
        SigmaSpace.Derivative(sample, derivative, sigma);
        // x ← x + d·(σ_down − σ) + noise·σ_up
        TensorPrimitives.Multiply(derivative, sigmaDown - sigma, derivative);
        TensorPrimitives.Add(sample, derivative, sample);
        var noise = _noise.Draw(generator, sample.Length);
        TensorPrimitives.Multiply(noise, sigmaUp, noise);
        TensorPrimitives.Add(sample, noise, sample);
    }
}
