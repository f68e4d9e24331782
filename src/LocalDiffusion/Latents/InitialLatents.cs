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
        int unetChannels, TorchGenerator generator, int images, int latentHeight, int latentWidth, int trainTimesteps, RunOptions runOptions)
    {
        if (request.InitImage is not null)
        {
            scheduler.SetTimesteps(request.StepCount);
            var fromImage = LatentPreparation.FromImage(request, scheduler, vaeEncoder(), scalingFactor,
                unetChannels, generator, images, latentHeight, latentWidth, runOptions);
            scheduler.SetBeginIndex(fromImage.BeginIndex);
            return fromImage;
        }
        if (request.InitLatents is { } given0)
            return FromLatents(request, given0, scheduler, generator, images * UNet.LatentChannels * latentHeight * latentWidth, trainTimesteps);
        var latents = new float[images * UNet.LatentChannels * latentHeight * latentWidth];
        if (request.InitialLatents is { } given) given.CopyTo(latents, 0);
        else generator.FillNormal(latents);
        scheduler.SetTimesteps(request.StepCount);
        TensorPrimitives.Multiply(latents, scheduler.InitNoiseSigma, latents);
        return new PreparedLatents(latents, 0, null, null);
    }

    // img2img from latents (diffusers' SDXL img2img with a 4-channel "image"): repeated for the batch, then either
    // continued as they are from DenoisingStart (the refiner's half of a hand-off) or noised to Strength.
    private static PreparedLatents FromLatents(GenerationRequest request, float[] given, IScheduler scheduler, TorchGenerator generator,
        int size, int trainTimesteps)
    {
        var start = new float[size];
        for (var offset = 0; offset < size; offset += given.Length)
            given.CopyTo(start, offset);
        scheduler.SetTimesteps(request.StepCount);
        if (request.DenoisingStart is { } fraction)
        {
            var from = ScheduleSplit.StartIndex(scheduler, fraction, trainTimesteps);
            scheduler.SetBeginIndex(from);
            return new PreparedLatents(start, from, null, null);
        }
        var (begin, _) = StrengthSchedule.BeginIndex(request.StepCount, request.EffectiveStrength, scheduler.Order);
        var noise = new float[size];
        generator.FillNormal(noise);
        var latents = new float[size];
        scheduler.AddNoise(start, noise, begin, latents);
        scheduler.SetBeginIndex(begin);
        return new PreparedLatents(latents, begin, null, null);
    }
}
