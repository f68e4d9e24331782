using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.Imaging;
using LocalDiffusion.Latents;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Decoding;

/// <summary>
/// Stage 4 of a generation: denoised latents → images. Each image's latents are divided by the VAE scaling factor,
/// decoded (tiled when the decoder is set to), converted to RGB, and for inpainting composited over the init image.
/// </summary>
internal static class LatentDecoding
{
    /// <summary>
    /// Decodes the <paramref name="images"/> items of <paramref name="latents"/> [n,4,h,w]; <paramref name="parameters"/>
    /// gives the PNG parameters text of image i.
    /// </summary>
    /// <exception cref="GenerationNumericsException">The scaled latents are not finite.</exception>
    public static List<GeneratedImage> Decode(float[] latents, int images, int latentHeight, int latentWidth, GenerationRequest request,
        VaeDecoder vae, float scalingFactor, string vaeDecoderPath, Func<int, string> parameters, RunOptions runOptions, CancellationToken token)
    {
        var result = new List<GeneratedImage>(images);
        var item = UNet.LatentChannels * latentHeight * latentWidth;
        var scaled = new float[item];
        int width = latentWidth * VaeDecoder.Factor, height = latentHeight * VaeDecoder.Factor;
        for (var i = 0; i < images; i++)
        {
            token.ThrowIfCancellationRequested();
            TensorPrimitives.Divide(latents.AsSpan(i * item, item), scalingFactor, scaled);
            if (!TensorPrimitives.IsFiniteAll<float>(scaled))
                throw new GenerationNumericsException(NumericsStage.VaeInput, null,
                    $"the denoised latents divided by the VAE scaling factor ({scalingFactor}) are not finite: the scaling factor in the VAE's config.json is too small.");
            var chw = vae.Decode(scaled, latentHeight, latentWidth, runOptions);
            var rgb = ImageConversion.ToRgb8(chw, width, height, vaeDecoderPath);
            if (request.MaskImage is { } mask)
                InpaintComposite.Apply(rgb, request.InitImage!.Resize(width, height), InpaintMask.ToPixels(mask.Resize(width, height), request.MaskBlur));
            result.Add(new GeneratedImage(width, height, rgb, parameters(i)));
        }
        return result;
    }
}
