using LocalDiffusion.Decoding;
using System.Numerics.Tensors;
using LocalDiffusion.Imaging;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Pipeline;

// Live previews: the intermediate latents decoded at the steps a request asks for (GenerationRequest.PreviewSteps), by a
// TAESD when one is at hand (PipelineOptions.PreviewDecoderPath, or the model folder's taesd/), as AUTOMATIC1111's
// "TAESD" live preview method does, else by the VAE the pictures use. Kept apart from the generation code so that both
// read on their own.
public sealed partial class StableDiffusionPipeline
{
    /// <summary>The component name of the preview decoder in <see cref="ModelInfo.Components"/>.</summary>
    private static bool WantsPreview(GenerationRequest request, int step) =>
        request.PreviewSteps is { Count: > 0 } steps && steps.Contains(step);

    // The preview decoder's session, held over a denoising loop that decodes previews between its steps.
    private OnnxComponent.Lease UsePreviewDecoder() => _model.Preview is { } preview ? preview.Use() : _model.Decoding.Use();

    /// <summary>
    /// Decodes each image's current latents. Sigma-parameterised schedulers (Euler, Heun, …) carry latents with a
    /// standard deviation of about √(σ² + 1), far from the unit-variance latents the VAE expects, so latents whose
    /// RMS exceeds 1 are divided by it first: the same normalisation the schedulers' scale_model_input applies.
    /// A TAESD takes the latents so normalised; the full VAE takes them divided by the scaling factor too.
    /// </summary>
    private GeneratedImage[] DecodePreview(float[] latents, int images, int latentH, int latentW, RunOptions runOptions)
    {
        var item = latents.Length / images;
        var scaled = new float[item];
        var previews = new GeneratedImage[images];
        var (scale, shift) = (_model.Preview ?? _model.Decoding.Decoder).LatentScale(_model.Latents.ScalingFactor, _model.Latents.ShiftFactor);
        for (var i = 0; i < images; i++)
        {
            var current = latents.AsSpan(i * item, item);
            var rms = MathF.Sqrt(TensorPrimitives.SumOfSquares(current) / item);
            var normaliser = _model.PreviewsNormaliseNoise && rms > 1f && float.IsFinite(rms) ? rms : 1f;
            TensorPrimitives.Divide(current, normaliser * scale, scaled);
            if (shift != 0f) TensorPrimitives.Add(scaled, shift, scaled);
            var (chw, source) = _model.Preview is { } preview
                ? (preview.Decode(scaled, latentH, latentW, runOptions), preview.FilePath)
                : DecodeWithPicturesVae(scaled, latentH, latentW, runOptions);
            int width = latentW * VaeDecoder.Factor, height = latentH * VaeDecoder.Factor;
            previews[i] = new GeneratedImage(width, height, ImageConversion.ToRgb8(chw, width, height, source));
        }
        return previews;
    }

    private (float[] Pixels, string Source) DecodeWithPicturesVae(float[] scaled, int latentH, int latentW, RunOptions runOptions)
    {
        var (chw, source, _) = _model.Decoding.Decode(scaled, latentH, latentW, runOptions);
        return (chw, source);
    }
}
