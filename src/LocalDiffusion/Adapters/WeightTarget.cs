using LocalDiffusion.Tensors;

namespace LocalDiffusion.Adapters;

/// <summary>How a module's weight is laid out in the ONNX graph, relative to torch's <c>[out, in(, kh, kw)]</c>.</summary>
internal enum WeightLayout
{
    /// <summary>torch.onnx's Linear as MatMul: the weight is stored transposed, <c>[in, out]</c>.</summary>
    MatMulTransposed,

    /// <summary>Gemm with transB = 1: stored as torch has it, <c>[out, in]</c>.</summary>
    GemmTransB,

    /// <summary>Gemm with transB = 0: stored <c>[in, out]</c>.</summary>
    GemmPlain,

    /// <summary>Conv: <c>[out, in, kh, kw]</c> as torch has it.</summary>
    Conv,

    /// <summary>A token-embedding table read by Gather: <c>[vocabulary, width]</c> (textual inversion extends it).</summary>
    Table,
}

/// <summary>A weight of the model that a LoRA can change: the module path its node names carry, and its initializer.</summary>
/// <param name="ModulePath">torch module path from the node name, e.g. <c>down_blocks.0.attentions.0.proj_in</c> (exporter prefix kept).</param>
/// <param name="Initializer">The initializer's name (<c>onnx::MatMul_123</c>, <c>conv_in.weight</c>, …).</param>
/// <param name="Layout">How it is stored.</param>
/// <param name="Dims">Its dimensions as stored.</param>
/// <param name="DataType">onnx.TensorProto.DataType (1 float, 10 float16).</param>
/// <param name="NodeName">The node that consumes it (for messages).</param>
/// <param name="ThroughCast">Whether it reaches the node through a Cast (a float16 export's weights).</param>
internal sealed record WeightTarget(string ModulePath, string Initializer, WeightLayout Layout, long[] Dims, int DataType, string NodeName, bool ThroughCast = false)
{
    /// <summary>Output features (torch's first dimension).</summary>
    public long OutFeatures => Layout is WeightLayout.MatMulTransposed or WeightLayout.GemmPlain ? Dims[1] : Dims[0];

    /// <summary>Input features (for Conv: input channels × kernel area).</summary>
    public long InFeatures => Layout switch
    {
        WeightLayout.MatMulTransposed or WeightLayout.GemmPlain => Dims[0],
        WeightLayout.GemmTransB => Dims[1],
        _ => TensorShape.Count(Dims.AsSpan(1)),
    };
}
