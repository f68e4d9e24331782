using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Denoising;

/// <summary>
/// What fills a UNet's residual inputs before each call (the ControlNets of a request): the denoising loop calls it with
/// the scaled latents of the evaluation, so the UNet needs to know nothing about where the residuals come from.
/// </summary>
internal interface IUNetResiduals
{
    /// <summary>Computes the residuals of evaluation <paramref name="index"/> into the residual inputs of the conditioning it was made for.</summary>
    void Apply(int index, ReadOnlySpan<float> scaled, float timestep, RunOptions runOptions);
}
