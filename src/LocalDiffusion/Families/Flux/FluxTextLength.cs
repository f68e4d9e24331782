using LocalDiffusion.Onnx;
using LocalDiffusion.TextEncoder;

namespace LocalDiffusion.Families.Flux;

/// <summary>
/// The T5 sequence length an export is fixed to, if any: Black Forest Labs' TensorRT graphs take exactly 512 tokens (dev)
/// or 256 (schnell), declared static in t5.opt's input_ids and the transformer's encoder_hidden_states and txt_ids.
/// </summary>
internal static class FluxTextLength
{
    /// <summary>The static length, null when both graphs take any; two graphs that disagree are refused naming both.</summary>
    public static int? Fixed(T5TextEncoder t5, string t5Path, OnnxComponent transformer)
    {
        var fromT5 = t5.FixedSequenceLength;
        var fromTransformer = transformer.Input("encoder_hidden_states").FixedDimension(1) is { } d ? (int)d : (int?)null;
        if (fromT5 is { } a && fromTransformer is { } b && a != b)
            throw new ModelLoadException(transformer.FilePath,
                $"its encoder_hidden_states take {b} T5 tokens, but the T5 encoder ({t5Path}) is fixed to {a}: the two files belong to different exports.");
        return fromT5 ?? fromTransformer;
    }
}
