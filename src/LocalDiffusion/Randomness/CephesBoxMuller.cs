using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LocalDiffusion.Randomness;

/// <summary>
/// The float32 Box–Muller step of PyTorch's AVX2 normal kernel (normal_fill_16_AVX2 with log256_ps and
/// sincos256_ps of aten/src/ATen/native/cpu/avx_mathfun.h), reproduced operation for operation.
/// </summary>
/// <remarks>
/// A block holds 16 uniforms d in [0, 1); lanes j and j + 8 become r·cos θ and r·sin θ with
/// r = √(−2 ln(1 − d[j])) and θ = 2π·d[j + 8]. Bit-exactness needs the same roundings as the compiled
/// kernel: GCC contracts the Cephes polynomial steps "y = y·x + p" into FMAs, so every place marked FMA
/// below is one fused operation (checked against the disassembly of the AVX2 kernel and against torch's
/// output). Because 1 − d lies in [2⁻²⁴, 1] and θ ≥ 0, the Cephes guards for x ≤ 0, denormals and negative
/// angles never fire and are left out.
/// </remarks>
internal static class CephesBoxMuller
{
    /// <summary>Values per block: 8 radius lanes followed by 8 angle lanes.</summary>
    public const int BlockSize = 16;

    private const int Half = BlockSize / 2;

    // Constants as the C source writes them: double literals narrowed to float.
    private const float TwoPi = (float)(2.0 * Math.PI);
    private const float SqrtHalf = (float)0.707106781186547524;
    private const float LogP0 = (float)7.0376836292E-2;
    private const float LogP1 = (float)-1.1514610310E-1;
    private const float LogP2 = (float)1.1676998740E-1;
    private const float LogP3 = (float)-1.2420140846E-1;
    private const float LogP4 = (float)1.4249322787E-1;
    private const float LogP5 = (float)-1.6668057665E-1;
    private const float LogP6 = (float)2.0000714765E-1;
    private const float LogP7 = (float)-2.4999993993E-1;
    private const float LogP8 = (float)3.3333331174E-1;
    private const float LogQ1 = (float)-2.12194440e-4;
    private const float LogQ2 = (float)0.693359375;
    private const float MinusDp1 = (float)-0.78515625;
    private const float MinusDp2 = (float)-2.4187564849853515625e-4;
    private const float MinusDp3 = (float)-3.77489497744594108e-8;
    private const float SinP0 = (float)-1.9515295891E-4;
    private const float SinP1 = (float)8.3321608736E-3;
    private const float SinP2 = (float)-1.6666654611E-1;
    private const float CosP0 = (float)2.443315711809948E-005;
    private const float CosP1 = (float)-1.388731625493765E-003;
    private const float CosP2 = (float)4.166664568298827E-002;
    private const float FourOverPi = (float)1.27323954473516;
    private const int MantissaMask = ~0x7f800000;
    private const int HalfBits = 0x3f000000;

    /// <summary>Whether <see cref="TransformVector"/> runs on 256-bit SIMD with hardware FMA on this machine.</summary>
    public static bool IsVectorized => Vector256.IsHardwareAccelerated && Fma.IsSupported;

    /// <summary>Turns every full block of 16 uniforms at the start of <paramref name="data"/> into normals, one block as two 8-lane vectors.</summary>
    internal static void TransformVector(Span<float> data)
    {
        ref var start = ref MemoryMarshal.GetReference(data);
        for (var i = 0; i + BlockSize <= data.Length; i += BlockSize)
        {
            ref var block = ref Unsafe.Add(ref start, i);
            var one = Vector256.Create(1f);
            var radius = Vector256.Sqrt(Log(one - Vector256.LoadUnsafe(ref block)) * -2f);
            var theta = Vector256.LoadUnsafe(ref block, (nuint)Half) * TwoPi;
            var (sin, cos) = SinCos(theta);
            // torch stores fma(n, std = 1, mean = 0): exact, except that −0 becomes +0.
            (radius * cos + Vector256<float>.Zero).StoreUnsafe(ref block);
            (radius * sin + Vector256<float>.Zero).StoreUnsafe(ref block, (nuint)Half);
        }
    }

    /// <summary>The same as <see cref="TransformVector"/> lane by lane, with the same operations and fused steps.</summary>
    internal static void TransformScalar(Span<float> data)
    {
        for (var i = 0; i + BlockSize <= data.Length; i += BlockSize)
        {
            var block = data.Slice(i, BlockSize);
            for (var j = 0; j < Half; j++)
            {
                var radius = MathF.Sqrt(Log(1f - block[j]) * -2f);
                var (sin, cos) = SinCos(block[j + Half] * TwoPi);
                block[j] = radius * cos + 0f;
                block[j + Half] = radius * sin + 0f;
            }
        }
    }

    private static Vector256<float> Log(Vector256<float> x)
    {
        var one = Vector256.Create(1f);
        var exponent = Vector256.ShiftRightLogical(x.AsInt32(), 23) - Vector256.Create(0x7f);
        var e = Vector256.ConvertToSingle(exponent) + one;
        x = ((x.AsInt32() & Vector256.Create(MantissaMask)) | Vector256.Create(HalfBits)).AsSingle();

        // Mantissa below √½: use 2m − 1 and one less in the exponent.
        var below = Vector256.LessThan(x, Vector256.Create(SqrtHalf));
        var keep = x & below;
        x -= one;
        e -= one & below;
        x += keep;

        var z = x * x;
        var y = Vector256.FusedMultiplyAdd(Vector256.Create(LogP0), x, Vector256.Create(LogP1));
        y = Vector256.FusedMultiplyAdd(y, x, Vector256.Create(LogP2));
        y = Vector256.FusedMultiplyAdd(y, x, Vector256.Create(LogP3));
        y = Vector256.FusedMultiplyAdd(y, x, Vector256.Create(LogP4));
        y = Vector256.FusedMultiplyAdd(y, x, Vector256.Create(LogP5));
        y = Vector256.FusedMultiplyAdd(y, x, Vector256.Create(LogP6));
        y = Vector256.FusedMultiplyAdd(y, x, Vector256.Create(LogP7));
        y = Vector256.FusedMultiplyAdd(y, x, Vector256.Create(LogP8));
        y *= x;
        y = Vector256.FusedMultiplyAdd(y, z, e * LogQ1);
        y = Vector256.FusedMultiplyAdd(z, Vector256.Create(-0.5f), y);
        x += y;
        return Vector256.FusedMultiplyAdd(e, Vector256.Create(LogQ2), x);
    }

    private static float Log(float x)
    {
        var bits = BitConverter.SingleToInt32Bits(x);
        var e = (float)((int)((uint)bits >> 23) - 0x7f) + 1f;
        x = BitConverter.Int32BitsToSingle((bits & MantissaMask) | HalfBits);

        var below = x < SqrtHalf;
        var keep = below ? x : 0f;
        x -= 1f;
        e -= below ? 1f : 0f;
        x += keep;

        var z = x * x;
        var y = MathF.FusedMultiplyAdd(LogP0, x, LogP1);
        y = MathF.FusedMultiplyAdd(y, x, LogP2);
        y = MathF.FusedMultiplyAdd(y, x, LogP3);
        y = MathF.FusedMultiplyAdd(y, x, LogP4);
        y = MathF.FusedMultiplyAdd(y, x, LogP5);
        y = MathF.FusedMultiplyAdd(y, x, LogP6);
        y = MathF.FusedMultiplyAdd(y, x, LogP7);
        y = MathF.FusedMultiplyAdd(y, x, LogP8);
        y *= x;
        y = MathF.FusedMultiplyAdd(y, z, e * LogQ1);
        y = MathF.FusedMultiplyAdd(z, -0.5f, y);
        x += y;
        return MathF.FusedMultiplyAdd(e, LogQ2, x);
    }

    private static (Vector256<float> Sin, Vector256<float> Cos) SinCos(Vector256<float> x)
    {
        // Octant j = (trunc(x·4/π) + 1) & ~1, then x − j·π/4 in three steps of extended precision.
        var octant = (Vector256.ConvertToInt32Native(x * FourOverPi) + Vector256<int>.One) & Vector256.Create(~1);
        var y = Vector256.ConvertToSingle(octant);
        var sinSign = Vector256.ShiftLeft(octant & Vector256.Create(4), 29).AsSingle();
        var cosSign = Vector256.ShiftLeft(Vector256.AndNot(Vector256.Create(4), octant - Vector256.Create(2)), 29).AsSingle();
        var cosPolynomialForSin = Vector256.Equals(octant & Vector256.Create(2), Vector256<int>.Zero).AsSingle();

        x = Vector256.FusedMultiplyAdd(y, Vector256.Create(MinusDp1), x);
        x = Vector256.FusedMultiplyAdd(y, Vector256.Create(MinusDp2), x);
        x = Vector256.FusedMultiplyAdd(y, Vector256.Create(MinusDp3), x);

        var z = x * x;
        var halfZ = z * 0.5f;
        var c = Vector256.FusedMultiplyAdd(Vector256.Create(CosP0), z, Vector256.Create(CosP1));
        c = Vector256.FusedMultiplyAdd(c, z, Vector256.Create(CosP2));
        c *= z;
        c = Vector256.FusedMultiplyAdd(c, z, -halfZ);
        c += Vector256.Create(1f);

        var s = Vector256.FusedMultiplyAdd(Vector256.Create(SinP0), z, Vector256.Create(SinP1));
        s = Vector256.FusedMultiplyAdd(s, z, Vector256.Create(SinP2));
        s *= z;
        s = Vector256.FusedMultiplyAdd(s, x, x);

        // Select per lane which polynomial is the sine and which the cosine, with the kernel's own arithmetic.
        var sinFromS = cosPolynomialForSin & s;
        var sinFromC = Vector256.AndNot(c, cosPolynomialForSin);
        var sin = sinFromC + sinFromS;
        var cos = (c - sinFromC) + (s - sinFromS);
        return (sin ^ sinSign, cos ^ cosSign);
    }

    private static (float Sin, float Cos) SinCos(float x)
    {
        var octant = ((int)(x * FourOverPi) + 1) & ~1;
        var y = (float)octant;
        var sinNegate = (octant & 4) != 0;
        var cosNegate = ((octant - 2) & 4) == 0;
        var cosPolynomialForSin = (octant & 2) == 0;

        x = MathF.FusedMultiplyAdd(y, MinusDp1, x);
        x = MathF.FusedMultiplyAdd(y, MinusDp2, x);
        x = MathF.FusedMultiplyAdd(y, MinusDp3, x);

        var z = x * x;
        var halfZ = z * 0.5f;
        var c = MathF.FusedMultiplyAdd(CosP0, z, CosP1);
        c = MathF.FusedMultiplyAdd(c, z, CosP2);
        c *= z;
        c = MathF.FusedMultiplyAdd(c, z, -halfZ);
        c += 1f;

        var s = MathF.FusedMultiplyAdd(SinP0, z, SinP1);
        s = MathF.FusedMultiplyAdd(s, z, SinP2);
        s *= z;
        s = MathF.FusedMultiplyAdd(s, x, x);

        var sinFromS = cosPolynomialForSin ? s : 0f;
        var sinFromC = cosPolynomialForSin ? 0f : c;
        var sin = sinFromC + sinFromS;
        var cos = (c - sinFromC) + (s - sinFromS);
        return (sinNegate ? -sin : sin, cosNegate ? -cos : cos);
    }
}
