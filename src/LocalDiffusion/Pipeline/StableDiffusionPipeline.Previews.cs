using System.Numerics.Tensors;
using LocalDiffusion.Imaging;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion;

// Live previews: the intermediate latents decoded by the VAE at the steps a request asks for
// (GenerationRequest.PreviewSteps). Kept apart from the generation code so that both read on their own.
public sealed partial class StableDiffusionPipeline
{
    private static bool WantsPreview(GenerationRequest request, int step) =>
        request.PreviewSteps is { Count: > 0 } steps && steps.Contains(step);

    /// <summary>
    /// Decodes each image's current latents. Sigma-parameterised schedulers (Euler, Heun, …) carry latents with a
    /// standard deviation of about √(σ² + 1), far from the unit-variance latents the VAE expects, so latents whose
    /// RMS exceeds 1 are divided by it first: the same normalisation the schedulers' scale_model_input applies.
    /// </summary>
    private GeneratedImage[] DecodePreview(float[] latents, int images, int latentH, int latentW, RunOptions runOptions)
    {
        var item = latents.Length / images;
        var scaled = new float[item];
        var previews = new GeneratedImage[images];
        for (var i = 0; i < images; i++)
        {
            var current = latents.AsSpan(i * item, item);
            var rms = MathF.Sqrt(TensorPrimitives.SumOfSquares(current) / item);
            var normaliser = rms > 1f && float.IsFinite(rms) ? rms : 1f;
            TensorPrimitives.Divide(current, normaliser * Info.Family.VaeScalingFactor, scaled);
            var (chw, source, _) = _vae.Decode(scaled, latentH, latentW, runOptions);
            int width = latentW * VaeDecoder.Factor, height = latentH * VaeDecoder.Factor;
            previews[i] = new GeneratedImage(width, height, ImageConversion.ToRgb8(chw, width, height, source));
        }
        return previews;
    }
}
