using System.Numerics.Tensors;
using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Vae;

/// <summary>
/// The VAE decoder a pipeline decodes with, and the float32 decoder it decodes again with when that one is float16 and
/// overflows (NaN or infinity in the picture; SDXL's VAE does this in fp16), as AUTOMATIC1111 retries its VAE in fp32.
/// Without a float32 decoder the non-finite pixels reach <see cref="Decoding.ImageConversion.ToRgb8"/>, which refuses them.
/// </summary>
internal sealed class VaeDecoding(VaeDecoder decoder, VaeDecoder? float32Fallback) : IDisposable
{
    /// <summary>The decoder that runs first: the model's, or the one <see cref="PipelineOptions.VaeDecoderPath"/> names.</summary>
    public VaeDecoder Decoder { get; } = decoder;

    /// <summary>A float32 decoder for when <see cref="Decoder"/> is float16 and overflows; null when there is none.</summary>
    public VaeDecoder? Float32Fallback { get; } = float32Fallback;

    /// <summary>
    /// Decodes one image's latents (already divided by the scaling factor) into CHW floats, with the float32 fallback when
    /// the first decoder's pixels are not finite. <c>Source</c> is the file of the decoder whose pixels these are.
    /// </summary>
    public (float[] Pixels, string Source, bool FellBack) Decode(ReadOnlySpan<float> latents, int latentHeight, int latentWidth, RunOptions runOptions)
    {
        var pixels = Decoder.Decode(latents, latentHeight, latentWidth, runOptions);
        if (Float32Fallback is null || TensorPrimitives.IsFiniteAll<float>(pixels))
            return (pixels, Decoder.FilePath, false);
        return (Float32Fallback.Decode(latents, latentHeight, latentWidth, runOptions), Float32Fallback.FilePath, true);
    }

    /// <summary>Holds the first decoder's session open for a stage of several decodes (the fallback is opened per call, when needed).</summary>
    public OnnxComponent.Lease Use() => Decoder.Use();

    /// <inheritdoc/>
    public void Dispose()
    {
        Decoder.Dispose();
        Float32Fallback?.Dispose();
    }
}
