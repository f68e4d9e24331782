using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LocalDiffusion.Tests.Onnx;

/// <summary>
/// float32 ↔ bfloat16 at a graph's boundary, through the ONNX Runtime tensors the engine feeds a bf16 input and reads a
/// bf16 output from. Expected values worked out by hand from the formats (bfloat16 = a float32's upper 16 bits; rounding
/// to nearest, ties to even, as torch's <c>.to(torch.bfloat16)</c>); exact equality.
/// </summary>
public sealed class BFloat16ConversionTests
{
    [Fact]
    public void Floats_round_to_nearest_even_bfloat16_and_read_back_exactly()
    {
        float[] values =
        [
            1f, -2.5f, 1f / 3f,      // exact, exact, 0x3EAAAAAB → 0x3EAB = 0.333984375
            1.00390625f,             // 1 + 2⁻⁸: halfway between 0x3F80 and 0x3F81 → even 0x3F80 = 1
            1.01171875f,             // 1 + 3·2⁻⁸: halfway between 0x3F81 and 0x3F82 → even 0x3F82 = 1.015625
            3.4028235e38f,           // float32's largest rounds past bfloat16's largest: +∞ (as torch)
            float.NaN, 0f, -0f,
        ];
        float[] expected = [1f, -2.5f, 0.333984375f, 1f, 1.015625f, float.PositiveInfinity, float.NaN, 0f, -0f];
        var spec = new TensorSpec("x", TensorElementType.BFloat16, [values.Length]);
        using var tensor = OrtTensors.FromFloats(spec, values, [values.Length]);
        var back = new float[values.Length];
        OrtTensors.ReadFloats(tensor, back);
        Assert.Equal(expected, back);
        Assert.True(float.IsNegative(back[^1]), "-0 keeps its sign");
        Assert.True(OrtTensors.AcceptsFloats(TensorElementType.BFloat16));
    }
}
