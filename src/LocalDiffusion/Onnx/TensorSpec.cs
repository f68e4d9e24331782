using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LocalDiffusion.Onnx;

/// <summary>An input or output of an ONNX model as its session declares it.</summary>
/// <param name="Name">The tensor's name in the graph.</param>
/// <param name="ElementType">Its element type (float, float16, int32, int64, …).</param>
/// <param name="Dimensions">Its dimensions; -1 marks a symbolic (dynamic) dimension.</param>
public sealed record TensorSpec(string Name, TensorElementType ElementType, IReadOnlyList<long> Dimensions)
{
    /// <summary>Number of dimensions.</summary>
    public int Rank => Dimensions.Count;

    /// <summary>The fixed size of dimension <paramref name="axis"/>, or null when it is dynamic or absent.</summary>
    public long? FixedDimension(int axis) => axis < Rank && Dimensions[axis] > 0 ? Dimensions[axis] : null;

    /// <summary>e.g. <c>float16[?,4,64,64]</c>.</summary>
    public string Describe() =>
        $"{ElementTypeName(ElementType)}[{string.Join(",", Dimensions.Select(d => d > 0 ? d.ToString() : "?"))}]";

    internal static TensorSpec FromMetadata(string name, NodeMetadata metadata) =>
        new(name, metadata.ElementDataType, metadata.Dimensions.Select(d => (long)d).ToArray());

    internal static string ElementTypeName(TensorElementType type) => type switch
    {
        TensorElementType.Float => "float32",
        TensorElementType.Float16 => "float16",
        TensorElementType.Double => "float64",
        TensorElementType.Int32 => "int32",
        TensorElementType.Int64 => "int64",
        TensorElementType.BFloat16 => "bfloat16",
        _ => type.ToString().ToLowerInvariant(),
    };
}
