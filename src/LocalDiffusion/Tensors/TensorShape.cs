namespace LocalDiffusion.Tensors;

/// <summary>
/// Element counts of tensor shapes, the one place the engine multiplies dimensions: ONNX Runtime's outputs (Onnx), ONNX
/// initializers and safetensors entries (Adapters, Onnx.Rewriting), .npy files (Latents). A foundation below all of them,
/// so that each uses the same overflow rule: a product past <see cref="long"/>, or past what one array holds when an array
/// is to be made of it, is an <see cref="InvalidDataException"/> naming the shape, never a wrapped count.
/// </summary>
internal static class TensorShape
{
    /// <summary>The product of <paramref name="shape"/> (1 for a scalar), or false when a dimension is negative or the product passes <see cref="long.MaxValue"/>.</summary>
    public static bool TryCount(ReadOnlySpan<long> shape, out long count)
    {
        count = 1;
        if (shape.IndexOfAnyInRange(long.MinValue, -1) >= 0) return false;
        // A zero dimension empties the tensor whatever the others are: no product to pass the range.
        if (shape.Contains(0L))
        {
            count = 0;
            return true;
        }
        foreach (var d in shape)
        {
            if (count > long.MaxValue / d) return false;
            count *= d;
        }
        return true;
    }

    /// <summary>The number of elements a tensor of <paramref name="shape"/> holds (1 for a scalar).</summary>
    /// <exception cref="InvalidDataException">A dimension is negative, or the product passes <see cref="long.MaxValue"/>.</exception>
    public static long Count(ReadOnlySpan<long> shape) => TryCount(shape, out var count) ? count
        : throw new InvalidDataException($"the shape {Describe(shape)} {(shape.IndexOfAnyInRange(long.MinValue, -1) >= 0 ? "has a negative dimension" : "holds more values than a 64-bit count")}.");

    /// <inheritdoc cref="Count(ReadOnlySpan{long})"/>
    public static long Count(ReadOnlySpan<int> shape)
    {
        Span<long> wide = shape.Length <= 16 ? stackalloc long[shape.Length] : new long[shape.Length];
        for (var i = 0; i < shape.Length; i++) wide[i] = shape[i];
        return Count(wide);
    }

    /// <summary>The element count of <paramref name="shape"/> as the length of one array of them.</summary>
    /// <exception cref="InvalidDataException">The count is not valid (<see cref="Count(ReadOnlySpan{long})"/>) or more than one array holds (<see cref="Array.MaxLength"/>).</exception>
    public static int ArrayLength(ReadOnlySpan<long> shape)
    {
        var count = Count(shape);
        return count <= Array.MaxLength ? (int)count
            : throw new InvalidDataException($"the shape {Describe(shape)} holds {count} values, more than one array holds ({Array.MaxLength}).");
    }

    private static string Describe(ReadOnlySpan<long> shape) => $"[{string.Join(", ", shape.ToArray())}]";
}
