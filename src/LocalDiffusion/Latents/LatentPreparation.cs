using System.Globalization;
using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.Imaging;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Latents;

/// <summary>The starting latents of a generation from an init image, where the loop starts, and the inpainting blend if any.</summary>
internal sealed record PreparedLatents(float[] Latents, int BeginIndex, InpaintBlend? Blend);

/// <summary>
/// Latent preparation for img2img and inpainting, in the order diffusers' pipelines draw from the generator:
/// <list type="bullet">
/// <item>img2img (<c>StableDiffusionImg2ImgPipeline.prepare_latents</c>): encode the image once (one draw of [1,4,h,w]
/// for a <c>latent_parameters</c> encoder), × scaling factor, repeat for the batch, draw the noise [n,4,h,w],
/// <c>add_noise</c> at the first remaining timestep.</item>
/// <item>inpainting with a 4-channel UNet (<c>StableDiffusionInpaintPipeline</c>, legacy blend): the same image latents
/// and noise, but pure noise × init sigma at strength 1; then the masked image is encoded (one more draw, which only
/// advances the generator since a 4-channel UNet does not use it); after every step the kept region is replaced by the
/// image latents noised to the next timestep (<see cref="InpaintBlend"/>).</item>
/// </list>
/// </summary>
internal static class LatentPreparation
{
    /// <summary>
    /// diffusers' <c>get_timesteps</c>: init_timestep = min(int(steps·strength), steps), t_start = steps − init_timestep; the
    /// loop starts at evaluation t_start·order. The float strength is read as the decimal it prints as (0.7f → 0.7), so
    /// int(10·0.7) = 7 as in Python.
    /// </summary>
    public static (int BeginIndex, int InitSteps) BeginIndex(int steps, float strength, int order)
    {
        var decimalStrength = double.Parse(strength.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        var initSteps = Math.Min((int)(steps * decimalStrength), steps);
        return (Math.Max(steps - initSteps, 0) * order, initSteps);
    }

    /// <summary>Refuses, before any work, a scheduler that cannot add noise (a plug-in without <see cref="IScheduler.AddNoise"/>).</summary>
    public static void CheckScheduler(IScheduler scheduler, string name, int steps)
    {
        try
        {
            scheduler.SetTimesteps(steps);
            scheduler.AddNoise([], [], 0, []);
        }
        catch (NotSupportedException error)
        {
            throw new ArgumentException($"Scheduler \"{name}\" cannot be used with an init image: {error.Message}", nameof(GenerationRequest.Scheduler), error);
        }
    }

    /// <summary>Encodes the init image, noises it to the begin index, and sets up the inpainting blend when a mask is given.</summary>
    public static PreparedLatents FromImage(GenerationRequest request, IScheduler scheduler, VaeEncoder encoder, float scalingFactor,
        TorchGenerator generator, int images, int latentHeight, int latentWidth, RunOptions runOptions)
    {
        var initImage = request.InitImage ?? throw new ArgumentException("InitImage is required.", nameof(request));
        int width = latentWidth * VaeDecoder.Factor, height = latentHeight * VaeDecoder.Factor;
        var (begin, _) = BeginIndex(request.Steps, request.Strength, scheduler.Order);
        var item = UNet.LatentChannels * latentHeight * latentWidth;

        var encoded = encoder.Encode(initImage.Resize(width, height).ToChw(), latentHeight, latentWidth, generator, runOptions);
        TensorPrimitives.Multiply(encoded, scalingFactor, encoded);
        var imageLatents = new float[images * item];
        for (var i = 0; i < images; i++)
            encoded.CopyTo(imageLatents, i * item);

        var noise = new float[images * item];
        generator.FillNormal(noise);
        var latents = new float[images * item];
        var inpainting = request.MaskImage is not null;
        if (inpainting && request.Strength >= 1f)
            TensorPrimitives.Multiply(noise, scheduler.InitNoiseSigma, latents);
        else
            scheduler.AddNoise(imageLatents, noise, begin, latents);
        if (!inpainting)
            return new PreparedLatents(latents, begin, null);

        // diffusers encodes the masked image here with the same generator; a 4-channel UNet never reads the result,
        // but the draw moves the generator on, and stochastic schedulers' noise comes after it.
        if (encoder.DrawsFromGenerator)
            generator.FillNormal(new float[item]);
        var mask = InpaintMask.ToLatent(request.MaskImage!.Resize(width, height), latentHeight, latentWidth, request.MaskBlur);
        return new PreparedLatents(latents, begin, new InpaintBlend(imageLatents, noise, mask, scheduler));
    }
}
