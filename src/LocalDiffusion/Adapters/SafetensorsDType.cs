using LocalDiffusion.Tensors;

namespace LocalDiffusion.Adapters;

/// <summary>The element types the reader converts to float32 (safetensors' own dtype names).</summary>
public enum SafetensorsDType
{
    /// <summary>IEEE float32, "F32".</summary>
    F32,

    /// <summary>IEEE float16, "F16".</summary>
    F16,

    /// <summary>bfloat16 (the upper half of a float32), "BF16".</summary>
    BF16,
}

/// <summary>One tensor's header entry: type, shape and where its bytes are in the file.</summary>
/// <param name="Name">The key.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Dimensions (empty for a scalar).</param>
/// <param name="FileOffset">Absolute offset of the first byte in the file.</param>
/// <param name="ByteLength">Number of bytes.</param>
public sealed record SafetensorsEntry(string Name, SafetensorsDType DType, long[] Shape, long FileOffset, long ByteLength)
{
    /// <summary>Number of elements (the product of the shape; 1 for a scalar).</summary>
    public long ElementCount => TensorShape.Count(Shape);
}
