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

    /// <summary>
    /// Model evaluations per inference step (diffusers' <c>order</c>): 2 for Heun and DPM2, whose <see cref="Timesteps"/>
    /// list each step twice, else 1. img2img starts at evaluation <c>t_start · Order</c>.
    /// </summary>
    int Order => 1;

    /// <summary>
    /// Makes the run start at evaluation <paramref name="beginIndex"/> instead of 0 (diffusers' <c>set_begin_index</c>, which
    /// img2img and inpainting call after <c>set_timesteps</c>): the first <see cref="Step"/> is then <c>Step(beginIndex)</c>.
    /// Call it after <see cref="SetTimesteps"/>, which resets it to 0. The default does nothing, which is right for a
    /// scheduler whose steps depend only on the index they are given.
    /// </summary>
    void SetBeginIndex(int beginIndex)
    {
    }

    /// <summary>
    /// Writes <paramref name="original"/> noised to the level of evaluation <paramref name="stepIndex"/> into
    /// <paramref name="destination"/> (diffusers' <c>add_noise</c> with the begin index set to <paramref name="stepIndex"/>):
    /// x₀ + σ·ε for the sigma schedulers, √ᾱ_t·x₀ + √(1−ᾱ_t)·ε for the ᾱ ones, α_σ·x₀ + σ·α_σ·ε (α_σ = 1/√(σ²+1)) for
    /// the DPM-Solver family. img2img and inpainting need it; a scheduler without it is refused for them.
    /// </summary>
    /// <exception cref="NotSupportedException">The scheduler does not implement it (the default).</exception>
    void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination) =>
        throw new NotSupportedException($"Scheduler {GetType().Name} does not implement AddNoise, which img2img and inpainting need.");
}
