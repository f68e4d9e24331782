using LocalDiffusion.Randomness;

namespace LocalDiffusion.Tests.Randomness;

/// <summary>
/// A uniform of exactly 0 in a radius lane gives ln(1 − 0) = 0 and a radius of √(−0) = −0. Torch then stores
/// fma(r·cos θ, std = 1, mean = 0), and −0 + 0 is +0 in IEEE arithmetic; the AVX2 kernel compiled from
/// avx_mathfun.h with GCC 12 (-O3 -mavx2 -mfma) gives radius 0x80000000 and output 0x00000000 for this block.
/// </summary>
public class BoxMullerSignedZeroTests
{
    [Theory]
    [InlineData("avx2-vector")]
    [InlineData("avx2-scalar")]
    [InlineData("default")]
    public void ZeroUniformsGivePositiveZeroLikeTorch(string path)
    {
        var block = new float[CephesBoxMuller.BlockSize];

        switch (path)
        {
            case "avx2-vector":
                if (!CephesBoxMuller.IsVectorized)
                    Assert.Skip("This machine has no 256-bit SIMD with FMA.");
                CephesBoxMuller.TransformVector(block);
                break;
            case "avx2-scalar":
                CephesBoxMuller.TransformScalar(block);
                break;
            default:
                LibmBoxMuller.Transform(block);
                break;
        }

        Assert.All(block, value => Assert.Equal(0u, BitConverter.SingleToUInt32Bits(value)));
    }
}
