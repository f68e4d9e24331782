using System.Runtime.InteropServices;

namespace LocalDiffusion.Onnx;

/// <summary>
/// float32 ↔ bfloat16 at a graph's boundary (Black Forest Labs' bf16 FLUX release declares bf16 inputs and outputs).
/// bfloat16 is a float32's upper 16 bits: widening is exact; narrowing rounds to nearest, ties to even (as torch's
/// <c>.to(torch.bfloat16)</c>), and keeps a NaN a NaN.
/// </summary>
internal static class BFloat16Conversion
{
    /// <summary>Rounds each value of <paramref name="source"/> to bfloat16 bits in <paramref name="destination"/>.</summary>
    public static void FromSingle(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        var bits = MemoryMarshal.Cast<float, uint>(source);
        for (var i = 0; i < bits.Length; i++)
        {
            var b = bits[i];
            // A NaN whose payload sits in the low half alone would round to infinity: keep it a (quiet) NaN.
            if ((b & 0x7FFF_FFFFu) > 0x7F80_0000u)
            {
                destination[i] = (ushort)((b >> 16) | 0x0040u);
                continue;
            }
            destination[i] = (ushort)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
        }
    }

    /// <summary>Widens bfloat16 bits to float32 (exact).</summary>
    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        var bits = MemoryMarshal.Cast<float, uint>(destination);
        for (var i = 0; i < source.Length; i++) bits[i] = (uint)source[i] << 16;
    }
}
