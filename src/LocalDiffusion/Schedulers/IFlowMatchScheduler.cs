namespace LocalDiffusion.Schedulers;

/// <summary>
/// A flow-matching sampler (SD3, FLUX): the model predicts a velocity v and the sample moves along it,
/// x ← x + (σᵢ₊₁ − σᵢ)·v, with σ from 1 (noise) to 0 and the transformer's timestep σ·T. No input scaling,
/// initial noise of unit variance, and img2img noises by interpolation (<see cref="ScaleNoise"/>), not by adding noise.
/// </summary>
/// <remarks>
/// How a pipeline drives one: compute μ when <see cref="UseDynamicShifting"/> is set (FLUX.1-dev: μ from the image's token
/// count, <see cref="FlowMatchShift.CalculateShift"/> with the scheduler config's base/max values, which
/// <see cref="FlowMatchEulerDiscreteScheduler.MuFor"/> reads for you), call <see cref="SetTimesteps(int, double?)"/> (or, for FLUX's
/// own sigma ramp, <see cref="FlowMatchEulerDiscreteScheduler.SetSigmas"/>) instead of <see cref="IScheduler.SetTimesteps(int)"/>,
/// then loop as for any <see cref="IScheduler"/>.
/// </remarks>
public interface IFlowMatchScheduler : IScheduler
{
    /// <summary>Config <c>use_dynamic_shifting</c>: the schedule needs a per-request μ (FLUX.1-dev) instead of the static <c>shift</c>.</summary>
    bool UseDynamicShifting { get; }

    /// <summary>
    /// diffusers' <c>set_timesteps(num_inference_steps, mu=mu)</c>: <paramref name="inferenceSteps"/> steps, shifted by μ when
    /// <see cref="UseDynamicShifting"/> is set (then μ is required), else by the config's <c>shift</c> (μ is ignored, as diffusers
    /// ignores the μ FluxPipeline passes to FLUX.1-schnell's scheduler).
    /// </summary>
    /// <exception cref="ArgumentException">μ is missing while <see cref="UseDynamicShifting"/> is set.</exception>
    void SetTimesteps(int inferenceSteps, double? mu);

    /// <summary>
    /// diffusers' <c>scale_noise</c>, flow matching's forward process at evaluation <paramref name="stepIndex"/>:
    /// x = σ·ε + (1 − σ)·x₀ (float32, in that order). <see cref="IScheduler.AddNoise"/> does the same.
    /// </summary>
    void ScaleNoise(ReadOnlySpan<float> sample, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination);
}
