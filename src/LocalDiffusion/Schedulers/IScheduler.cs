using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// A sampler that drives the denoising loop, in the shape of diffusers' schedulers:
/// <c>SetTimesteps</c>, then for each model evaluation <c>ScaleModelInput</c>, the UNet, <c>Step</c>.
/// Implement it to plug a new sampler into the pipeline. An instance carries the state of one
/// generation (multistep history, step counter) and is not shared between generations.
/// </summary>
/// <remarks>
/// Samples are flat spans over the latents tensor <c>[B, 4, h, w]</c>; every operation is elementwise
/// over the whole span, so batch size does not matter to a scheduler.
/// </remarks>
public interface IScheduler
{
    /// <summary>Prepares the schedule for <paramref name="inferenceSteps"/> steps and resets all state.</summary>
    void SetTimesteps(int inferenceSteps);

    /// <summary>
    /// The timestep given to the UNet at each model evaluation, in order. Second-order schedulers list a
    /// timestep once per evaluation (diffusers' convention), so the count is the number of UNet calls.
    /// </summary>
    IReadOnlyList<float> Timesteps { get; }

    /// <summary>Standard deviation of the initial noise: the seed's unit Gaussian latents are multiplied by it.</summary>
    float InitNoiseSigma { get; }

    /// <summary>
    /// Writes the UNet input for evaluation <paramref name="stepIndex"/> into <paramref name="destination"/>
    /// (a copy of <paramref name="sample"/>, scaled where the sampler needs it, e.g. ÷√(σ²+1) for Euler).
    /// </summary>
    void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex);

    /// <summary>
    /// Advances <paramref name="sample"/> in place from the (guided) model output of evaluation
    /// <paramref name="stepIndex"/>. Must be called once per evaluation, in order. Stochastic samplers
    /// draw their noise from <paramref name="generator"/>, the generator that made the initial latents.
    /// </summary>
    void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator);
}
