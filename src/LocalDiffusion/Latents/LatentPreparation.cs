using System.Globalization;
using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.Imaging;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Latents;

/// <summary>The starting latents of a generation from an init image, where the loop starts, and the inpainting blend if any.</summary>
internal sealed record PreparedLatents(float[] Latents, int BeginIndex, InpaintBlend? Blend, InpaintChannels? Channels);

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
/// <item>inpainting with a 9-channel UNet (<c>StableDiffusionInpaintPipeline</c>): the image is encoded only below
/// strength 1, then the noise, then the masked image's latents, which with the mask become the UNet's extra channels
/// (<see cref="InpaintChannels"/>); no blend.</item>
/// </list>
/// </summary>
internal static class LatentPreparation
{
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
            throw new InvalidRequestException(nameof(GenerationRequest.Scheduler), null, null, called => $"{called} \"{name}\" cannot be used with an init image: {error.Message}", error);
        }
    }

    /// <summary>Encodes the init image, noises it to the begin index, and sets up inpainting when a mask is given.</summary>
    public static PreparedLatents FromImage(GenerationRequest request, IScheduler scheduler, VaeEncoder encoder, float scalingFactor,
        int unetChannels, TorchGenerator generator, int images, int latentHeight, int latentWidth, RunOptions runOptions)
    {
        var initImage = request.InitImage ?? throw new InvalidRequestException(nameof(request), null, null, "InitImage is required.");
        int width = latentWidth * VaeDecoder.Factor, height = latentHeight * VaeDecoder.Factor;
        var strength = request.EffectiveStrength;
        var (begin, _) = StrengthSchedule.BeginIndex(request.StepCount, strength, scheduler.Order);
        var item = UNet.LatentChannels * latentHeight * latentWidth;
        var picture = initImage.Resize(width, height).ToChw();
        var inpainting = request.MaskImage is not null;
        var nineChannels = unetChannels == UNet.InpaintingChannels;

        // A 9-channel UNet at strength 1 starts from pure noise and never needs the image latents: diffusers then
        // skips that encode and its draw (prepare_latents' return_image_latents is false for such UNets).
        float[]? imageLatents = null;
        if (!(nineChannels && strength >= 1f))
            imageLatents = Repeat(EncodeScaled(encoder, picture, scalingFactor, generator, latentHeight, latentWidth, runOptions), images);

        var noise = new float[images * item];
        generator.FillNormal(noise);
        var latents = new float[images * item];
        if (inpainting && strength >= 1f)
            TensorPrimitives.Multiply(noise, scheduler.InitNoiseSigma, latents);
        else
            scheduler.AddNoise(imageLatents!, noise, begin, latents);
        if (!inpainting)
            return new PreparedLatents(latents, begin, null, null);

        // diffusers encodes the masked image (repainted pixels set to 0) here with the same generator, for every UNet
        // kind: a 4-channel UNet never reads it, but the draw moves the generator on before any step's noise.
        var mask = request.MaskImage!.Resize(width, height);
        var pixelMask = InpaintMask.ToPixels(mask, request.MaskBlur);
        for (var c = 0; c < 3; c++)
            for (var p = 0; p < pixelMask.Length; p++)
                if (pixelMask[p] >= 0.5f)
                    picture[c * pixelMask.Length + p] = 0f;
        var maskedLatents = EncodeScaled(encoder, picture, scalingFactor, generator, latentHeight, latentWidth, runOptions);
        if (nineChannels)
        {
            // The UNet sees the binarised mask, nearest-sampled (diffusers blurs before binarising, so blur only moves the edge).
            var latentMask = InpaintMask.ToLatent(Binarised(mask, pixelMask), latentHeight, latentWidth, 0f);
            return new PreparedLatents(latents, begin, null, new InpaintChannels(latentMask, maskedLatents));
        }
        var blendMask = InpaintMask.ToLatent(mask, latentHeight, latentWidth, request.MaskBlur);
        return new PreparedLatents(latents, begin, new InpaintBlend(imageLatents!, noise, blendMask, scheduler), null);
    }

    private static float[] EncodeScaled(VaeEncoder encoder, float[] chw, float scalingFactor, TorchGenerator generator,
        int latentHeight, int latentWidth, RunOptions runOptions)
    {
        var encoded = encoder.Encode(chw, latentHeight, latentWidth, generator, runOptions);
        TensorPrimitives.Multiply(encoded, scalingFactor, encoded);
        return encoded;
    }

    private static float[] Repeat(float[] item, int times)
    {
        var all = new float[item.Length * times];
        for (var i = 0; i < times; i++)
            item.CopyTo(all, i * item.Length);
        return all;
    }

    // The (possibly blurred) pixel mask, binarised, as a picture for ToLatent's nearest sampling.
    private static InitImage Binarised(InitImage mask, float[] pixelMask)
    {
        var rgb = new byte[pixelMask.Length * 3];
        for (var p = 0; p < pixelMask.Length; p++)
            if (pixelMask[p] >= 0.5f)
                rgb.AsSpan(3 * p, 3).Fill(255);
        return new InitImage(mask.Width, mask.Height, rgb);
    }
}
