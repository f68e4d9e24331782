using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Latents;

/// <summary>
/// Stage 2 of a generation: the latents the loop starts from. Text-to-image: torch.randn on a CPU generator seeded like
/// diffusers (or the request's own latents), times the scheduler's initial sigma. With an init image:
/// <see cref="LatentPreparation.FromImage"/> (img2img, inpainting). Sets the scheduler's timesteps and begin index.
/// </summary>
internal static class InitialLatents
{
    /// <summary>Prepares the starting latents [n,4,h,w] and where the loop begins.</summary>
    public static PreparedLatents Prepare(GenerationRequest request, IScheduler scheduler, Func<VaeEncoder> vaeEncoder, float scalingFactor,
        int unetChannels, TorchGenerator generator, int images, int latentHeight, int latentWidth, RunOptions runOptions)
    {
        if (request.InitImage is not null)
        {
            scheduler.SetTimesteps(request.Steps);
            var fromImage = LatentPreparation.FromImage(request, scheduler, vaeEncoder(), scalingFactor,
                unetChannels, generator, images, latentHeight, latentWidth, runOptions);
            scheduler.SetBeginIndex(fromImage.BeginIndex);
            return fromImage;
        }
        var latents = new float[images * UNet.LatentChannels * latentHeight * latentWidth];
        if (request.InitialLatents is { } given) given.CopyTo(latents, 0);
        else generator.FillNormal(latents);
        scheduler.SetTimesteps(request.Steps);
        TensorPrimitives.Multiply(latents, scheduler.InitNoiseSigma, latents);
        return new PreparedLatents(latents, 0, null, null);
    }
}
