using LocalDiffusion.Errors;
using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.Imaging;
using LocalDiffusion.Latents;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Decoding;

/// <summary>
/// Stage 4 of a generation: denoised latents → images. Each image's latents are divided by the VAE scaling factor (and
/// shifted, for the families whose VAE has a shift),
/// decoded (tiled when the decoder is set to), converted to RGB, and for inpainting composited over the init image.
/// </summary>
internal static class LatentDecoding
{
    /// <summary>
    /// Decodes the <paramref name="images"/> items of <paramref name="latents"/> [n,C,h,w]; <paramref name="parameters"/>
    /// gives the PNG parameters text of image i. When an fp16 decoder overflowed and its float32 fallback decoded instead,
    /// <paramref name="warnings"/> says so.
    /// </summary>
    /// <exception cref="GenerationNumericsException">The scaled latents, or the decoded pixels, are not finite.</exception>
    public static List<GeneratedImage> Decode(float[] latents, int images, int latentHeight, int latentWidth, GenerationRequest request,
        VaeDecoding vae, LatentFormat format, Func<int, string> parameters, List<string> warnings, RunOptions runOptions, CancellationToken token)
    {
        List<int>? fellBack = null;
        var result = new List<GeneratedImage>(images);
        var item = format.Channels * latentHeight * latentWidth;
        var scaled = new float[item];
        var (scalingFactor, shift) = vae.Decoder.LatentScale(format.ScalingFactor, format.ShiftFactor); // a TAESD decodes the denoiser's latents as they are
        int width = latentWidth * VaeDecoder.Factor, height = latentHeight * VaeDecoder.Factor;
        for (var i = 0; i < images; i++)
        {
            token.ThrowIfCancellationRequested();
            TensorPrimitives.Divide(latents.AsSpan(i * item, item), scalingFactor, scaled);
            if (shift != 0f) TensorPrimitives.Add(scaled, shift, scaled);
            if (!TensorPrimitives.IsFiniteAll<float>(scaled))
                throw new GenerationNumericsException(NumericsStage.VaeInput, null,
                    $"the denoised latents divided by the VAE scaling factor ({scalingFactor}) are not finite: the scaling factor in the VAE's config.json is too small.");
            var (chw, source, retried) = vae.Decode(scaled, latentHeight, latentWidth, runOptions);
            if (retried) (fellBack ??= []).Add(i + 1);
            var rgb = ImageConversion.ToRgb8(chw, width, height, source);
            if (request.MaskImage is { } mask)
                InpaintComposite.Apply(rgb, request.InitImage!.Resize(width, height), InpaintMask.ToPixels(mask.Resize(width, height), request.MaskBlur));
            result.Add(new GeneratedImage(width, height, rgb, parameters(i)));
        }
        if (fellBack is not null)
            warnings.Add($"The float16 VAE decoder ({vae.Decoder.FilePath}) overflowed (NaN/infinity) on image {string.Join(", ", fellBack)} of {images}; " +
                $"decoded again in float32 with {vae.Float32Fallback!.FilePath}.");
        return result;
    }
}
