using LocalDiffusion.Errors;
using System.Numerics.Tensors;

namespace LocalDiffusion.Decoding;

/// <summary>Turns the VAE's planar float output into RGB8 pixels, the way diffusers post-processes.</summary>
internal static class ImageConversion
{
    /// <summary>
    /// CHW floats in about [-1,1] → RGB8: clamp(x/2 + 0.5, 0, 1)·255, rounded. Throws when the decoder produced
    /// NaN or infinity (an fp16 VAE overflow would otherwise come out as a silent black image); the caller has checked
    /// that the latents were finite, so the decoder is to blame.
    /// </summary>
    public static byte[] ToRgb8(ReadOnlySpan<float> chw, int width, int height, string source)
    {
        var plane = width * height;
        if (!float.IsFinite(TensorPrimitives.Sum(chw)))
        {
            var bad = 0;
            foreach (var v in chw) if (!float.IsFinite(v)) bad++;
            if (bad > 0)
                throw new GenerationNumericsException(NumericsStage.VaeDecoder, null,
                    $"the VAE decoder ({source}) turned finite latents into {bad} NaN/infinity values out of {chw.Length}: the image would be black. " +
                    "fp16 VAE decoders overflow this way (SDXL's above all): give an fp32 VAE decoder instead (PipelineOptions.VaeDecoderPath, --vae PATH), " +
                    $"or ship one beside it as {Path.GetFileName(Model.VaeDecoderFile.Float32VariantOf(source))}, which is then used when the fp16 one overflows.");
        }
        var scaled = new float[chw.Length];
        // x/2 + 0.5, clamp to [0,1], ×255 in one pass each, vectorised.
        TensorPrimitives.Multiply(chw, 0.5f, scaled);
        TensorPrimitives.Add(scaled, 0.5f, scaled);
        TensorPrimitives.Clamp(scaled, 0f, 1f, scaled);
        TensorPrimitives.Multiply(scaled, 255f, scaled);
        var rgb = new byte[plane * 3];
        for (var c = 0; c < 3; c++)
        {
            var channel = scaled.AsSpan(c * plane, plane);
            for (var i = 0; i < plane; i++)
                rgb[i * 3 + c] = (byte)MathF.Round(channel[i], MidpointRounding.ToEven);
        }
        return rgb;
    }
}
