namespace LocalDiffusion.Schedulers;

/// <summary>A scheduler that works in k-diffusion sigmas and exposes them (for inspection, benchmarks and img2img strength).</summary>
public interface ISigmaSchedule
{
    /// <summary>σ at each step of the current run, then the sigma after the last step (one more than the timesteps).</summary>
    IReadOnlyList<float> Sigmas { get; }
}
