using System.Numerics.Tensors;
using LocalDiffusion.Randomness;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Euler's method on the rectified-flow ODE, matching diffusers' <c>FlowMatchEulerDiscreteScheduler</c> (v0.31.0), the
/// scheduler of Stable Diffusion 3 and FLUX.1: x ← x + (σᵢ₊₁ − σᵢ)·v, with σ from 1 towards 0 and timesteps σ·T.
/// </summary>
/// <remarks>
/// <para>The schedule: σ evenly spaced (as timesteps) from the training schedule's σ_max to σ_min, then shifted, statically by
/// config <c>shift</c> s (σ ← s·σ/(1 + (s − 1)·σ); SD3 uses 3.0), or, with <c>use_dynamic_shifting</c>, by a per-request μ
/// (σ ← e^μ/(e^μ + 1/σ − 1); FLUX.1-dev). The training schedule's σ_min is itself shifted once in the constructor, so a
/// static shift applies twice to the last step's σ, as in diffusers.</para>
/// <para>μ depends on the picture (its token count), so it is not a config key: pass it to <see cref="SetTimesteps(int, double?)"/>
/// or <see cref="SetSigmas"/>; <see cref="MuFor"/> computes it from the config as FluxPipeline does. Calling
/// <see cref="SetTimesteps(int)"/> on a dynamically shifted config is refused, as diffusers refuses <c>set_timesteps</c> without μ.</para>
/// <para>v0.31.0's class has no Karras, exponential or beta sigmas (they arrived in v0.32.0), no <c>shift_terminal</c> and no
/// <c>invert_sigmas</c>; configs that carry those keys are read as v0.31.0 reads them: the keys are ignored.
/// <c>step</c>'s s_churn/s_tmin/s_tmax/s_noise arguments are unused by v0.31.0's Euler step and have no counterpart here.</para>
/// </remarks>
public sealed class FlowMatchEulerDiscreteScheduler : IFlowMatchScheduler, ISigmaSchedule
{
    private readonly double _sigmaMax;
    private readonly double _sigmaMin;
    private readonly ScratchBuffer _update = new();
    private float[]? _sigmas;
    private float[] _timesteps = [];

    /// <summary>Builds the scheduler; absent keys take diffusers' defaults (T = 1000, shift 1.0, no dynamic shifting, 0.5/1.15 at 256/4096 tokens).</summary>
    public FlowMatchEulerDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        TrainTimesteps = config.NumTrainTimesteps ?? 1000;
        Shift = config.Shift ?? 1.0;
        UseDynamicShifting = config.UseDynamicShifting ?? false;
        BaseShift = config.BaseShift ?? 0.5;
        MaxShift = config.MaxShift ?? 1.15;
        BaseImageSeqLen = config.BaseImageSeqLen ?? 256;
        MaxImageSeqLen = config.MaxImageSeqLen ?? 4096;
        (_sigmaMax, _sigmaMin) = FlowMatchShift.TrainingRange(TrainTimesteps, Shift, UseDynamicShifting);
    }

    /// <summary>Config <c>num_train_timesteps</c> T: timestep = σ·T.</summary>
    public int TrainTimesteps { get; }

    /// <summary>Config <c>shift</c>, the static shift (unused when <see cref="UseDynamicShifting"/> is set).</summary>
    public double Shift { get; }

    /// <inheritdoc/>
    public bool UseDynamicShifting { get; }

    /// <summary>Config <c>base_shift</c>: μ at <see cref="BaseImageSeqLen"/> tokens.</summary>
    public double BaseShift { get; }

    /// <summary>Config <c>max_shift</c>: μ at <see cref="MaxImageSeqLen"/> tokens.</summary>
    public double MaxShift { get; }

    /// <summary>Config <c>base_image_seq_len</c>.</summary>
    public int BaseImageSeqLen { get; }

    /// <summary>Config <c>max_image_seq_len</c>.</summary>
    public int MaxImageSeqLen { get; }

    /// <summary>
    /// μ for a picture of <paramref name="imageSeqLen"/> transformer tokens, from this config as FluxPipeline computes it:
    /// <see cref="FlowMatchShift.CalculateShift"/>(n, base_image_seq_len, max_image_seq_len, base_shift, max_shift).
    /// FLUX: n = (H/16)·(W/16) (2×2-packed latents, VAE factor 8); 1024² → 4096 tokens → μ = 1.15.
    /// </summary>
    public double MuFor(int imageSeqLen) =>
        FlowMatchShift.CalculateShift(imageSeqLen, BaseImageSeqLen, MaxImageSeqLen, BaseShift, MaxShift);

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _sigmas is null ? throw TimestepsNotSet.Error(nameof(FlowMatchEulerDiscreteScheduler)) : _timesteps;

    /// <summary>σ at each step, then the final 0 (one more than <see cref="Timesteps"/>).</summary>
    public IReadOnlyList<float> Sigmas => Run;

    /// <summary>1: flow matching starts from unit Gaussian noise (diffusers' SD3 and FLUX pipelines do not scale it).</summary>
    public float InitNoiseSigma => 1f;

    private float[] Run => _sigmas ?? throw TimestepsNotSet.Error(nameof(FlowMatchEulerDiscreteScheduler));

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">The config uses dynamic shifting, which needs μ: call <see cref="SetTimesteps(int, double?)"/>.</exception>
    public void SetTimesteps(int inferenceSteps)
    {
        if (UseDynamicShifting)
            throw new InvalidOperationException(
                $"{nameof(FlowMatchEulerDiscreteScheduler)}: the config sets use_dynamic_shifting, so the schedule needs μ from the picture's size; " +
                $"call SetTimesteps(steps, mu) with mu = MuFor(imageTokens).");
        SetTimesteps(inferenceSteps, null);
    }

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps, double? mu)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inferenceSteps, 1);
        Apply(FlowMatchShift.EvenSigmas(TrainTimesteps, _sigmaMax, _sigmaMin, inferenceSteps), mu);
    }

    /// <summary>
    /// diffusers' <c>set_timesteps(sigmas=…, mu=…)</c>: a caller's own σ ramp (before shifting), one per step. FluxPipeline passes
    /// <c>np.linspace(1.0, 1/n, n)</c> with μ; the ramp is shifted like the default one (μ when dynamic, else the static shift).
    /// </summary>
    /// <exception cref="ArgumentException">The ramp is empty or holds a non-finite value, or μ is missing while dynamic shifting is on.</exception>
    public void SetSigmas(IReadOnlyList<double> sigmas, double? mu = null)
    {
        ArgumentNullException.ThrowIfNull(sigmas);
        if (sigmas.Count == 0 || sigmas.Any(s => !double.IsFinite(s)))
            throw new InvalidRequestException(nameof(sigmas), null, null, "The sigma ramp must hold at least one finite value.");
        Apply(sigmas, mu);
    }

    /// <summary>FLUX's ramp for <paramref name="inferenceSteps"/> steps: <c>np.linspace(1.0, 1/n, n)</c>, in float64.</summary>
    public static double[] FluxSigmas(int inferenceSteps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inferenceSteps, 1);
        return NumpyRanges.Linspace(1.0, 1.0 / inferenceSteps, inferenceSteps);
    }

    private void Apply(IReadOnlyList<double> sigmas, double? mu)
    {
        if (UseDynamicShifting && mu is null)
            throw new InvalidRequestException(nameof(mu), null, null, $"{nameof(FlowMatchEulerDiscreteScheduler)}: use_dynamic_shifting is set, so μ is required (MuFor(imageTokens)).");
        var shifted = sigmas.Select(s => UseDynamicShifting ? FlowMatchShift.Dynamic(mu!.Value, s) : FlowMatchShift.Static(Shift, s)).ToArray();
        (_sigmas, _timesteps) = FlowMatchShift.Finish(shifted, TrainTimesteps);
    }

    /// <summary>Copies the sample: flow-matching models take it unscaled.</summary>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    /// <remarks>Each step reads only the index it is given, so the begin index is only checked.</remarks>
    public void SetBeginIndex(int beginIndex) =>
        NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(FlowMatchEulerDiscreteScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void ScaleNoise(ReadOnlySpan<float> sample, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(FlowMatchEulerDiscreteScheduler), nameof(stepIndex));
        NoiseAdding.Flow(sample, noise, Run[i], destination);
    }

    /// <summary>Flow matching's img2img noising, <see cref="ScaleNoise"/>: σ·ε + (1 − σ)·x₀.</summary>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination) =>
        ScaleNoise(original, noise, stepIndex, destination);

    /// <summary>x ← x + (σᵢ₊₁ − σᵢ)·v, with <paramref name="modelOutput"/> the (guided) velocity; float32 in diffusers' order.</summary>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var sigmas = Run;
        NoiseAdding.CheckIndex(stepIndex, _timesteps.Length, nameof(FlowMatchEulerDiscreteScheduler), nameof(stepIndex));
        var update = _update.Get(sample.Length);
        TensorPrimitives.Multiply(modelOutput, sigmas[stepIndex + 1] - sigmas[stepIndex], update);
        TensorPrimitives.Add(sample, update, sample);
    }
}
