using LocalDiffusion.Onnx.Rewriting;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.Tests.Tensors;

/// <summary>
/// The one element-count helper (Adapters, Onnx and Latents all count shapes with it): products as numpy's
/// <c>prod(shape)</c> gives them (1 for a scalar, 0 with any zero dimension), and a product past a 64-bit count or past
/// one array is an error naming the shape, where the LINQ products it replaced wrapped (2^32 · 2^32 is 0 in a long;
/// <c>(int)</c> of 65536 · 65537 is 65536). Expected numbers are the products written out.
/// </summary>
public sealed class TensorShapeTests
{
    [Fact]
    public void Counts_are_the_products_of_the_dimensions()
    {
        Assert.Equal(2L * 3 * 4, TensorShape.Count([2L, 3, 4]));
        Assert.Equal(1, TensorShape.Count(ReadOnlySpan<long>.Empty));
        Assert.Equal(0, TensorShape.Count([1L << 40, 1L << 40, 0]));
        Assert.Equal(6, TensorShape.Count([2, 3]));
        Assert.Equal(320 * 4 * 3 * 3, TensorShape.ArrayLength([320L, 4, 3, 3]));
    }

    [Fact]
    public void A_product_past_a_64_bit_count_is_an_error_naming_the_shape_not_a_wrap()
    {
        var e = Assert.Throws<InvalidDataException>(() => TensorShape.Count([1L << 32, 1L << 32]));
        Assert.Equal("the shape [4294967296, 4294967296] holds more values than a 64-bit count.", e.Message);
        Assert.False(TensorShape.TryCount([1L << 32, 1L << 32], out _));
        Assert.Throws<InvalidDataException>(() => TensorShape.Count([int.MaxValue, int.MaxValue, int.MaxValue]));
        Assert.Contains("has a negative dimension", Assert.Throws<InvalidDataException>(() => TensorShape.Count([4L, -1])).Message);
    }

    [Fact]
    public void A_product_past_one_array_is_an_error_naming_the_shape_not_a_wrap()
    {
        var e = Assert.Throws<InvalidDataException>(() => TensorShape.ArrayLength([65536L, 65537]));
        Assert.Equal($"the shape [65536, 65537] holds 4295032832 values, more than one array holds ({Array.MaxLength}).", e.Message);
    }

    [Fact]
    public void An_onnx_initializer_whose_shape_overflows_is_not_read_as_a_small_one()
    {
        // OnnxGraph.Values reads small constants; a shape whose product wraps to a small count must not pass for one.
        var tensor = new OnnxGraph.Tensor(ReadOnlyMemory<byte>.Empty, "w", [1L << 32, 1L << 32, 3], OnnxGraph.Float, false);
        Assert.Null(OnnxGraph.Values(tensor));
    }
}
