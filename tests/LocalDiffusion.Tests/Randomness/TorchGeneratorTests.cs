using LocalDiffusion.Randomness;

namespace LocalDiffusion.Tests.Randomness;

/// <summary>TorchGenerator against torch.randn (see <see cref="TorchRandnReference"/>) for both torch kernels, and
/// for the AVX2 kernel on both its SIMD and per-lane forms.</summary>
public class TorchGeneratorTests
{
    public static TheoryData<TorchCpuKernel, bool, int> SingleDraws => Cases("single");

    public static TheoryData<TorchCpuKernel, bool, int> Sequences => Cases("sequences");

    [Theory]
    [MemberData(nameof(SingleDraws))]
    public void OneDrawFromAFreshGeneratorMatchesTorch(TorchCpuKernel kernel, bool vectorized, int index)
    {
        var draw = TorchRandnReference.Kernel(kernel).GetProperty("single")[index];
        var seed = draw.GetProperty("seed").GetInt64();
        var generator = Create(seed, kernel, vectorized);

        var values = generator.Normal(draw.GetProperty("count").GetInt32());

        TorchRandnReference.AssertSameBits(draw, values, $"{kernel}, seed {seed}, randn({values.Length})");
    }

    [Theory]
    [MemberData(nameof(Sequences))]
    public void ConsecutiveDrawsContinueTheStreamLikeTorch(TorchCpuKernel kernel, bool vectorized, int index)
    {
        var sequence = TorchRandnReference.Kernel(kernel).GetProperty("sequences")[index];
        var seed = sequence.GetProperty("seed").GetInt64();
        var generator = Create(seed, kernel, vectorized);

        var call = 0;
        foreach (var draw in sequence.GetProperty("draws").EnumerateArray())
        {
            var values = new float[draw.GetProperty("count").GetInt32()];
            generator.FillNormal(values);
            TorchRandnReference.AssertSameBits(draw, values, $"{kernel}, seed {seed}, call {call++}: randn({values.Length})");
        }
    }

    [Theory]
    [InlineData(TorchCpuKernel.Avx2, "AVX2")]
    [InlineData(TorchCpuKernel.Default, "NO AVX")]
    public void ReferenceNumbersCameFromTheKernelTheyAreFiledUnder(TorchCpuKernel kernel, string capability) =>
        Assert.Equal(capability, TorchRandnReference.Kernel(kernel).GetProperty("cpu_capability").GetString());

    [Fact]
    public void TheTwoKernelsDifferForLargeDrawsButNotForSmallOnes()
    {
        var avx2 = new TorchGenerator(42, TorchCpuKernel.Avx2);
        var portable = new TorchGenerator(42, TorchCpuKernel.Default);

        Assert.Equal(avx2.Normal(15), portable.Normal(15));
        Assert.NotEqual(avx2.Normal(4096), portable.Normal(4096));
    }

    [Fact]
    public void SeedIsKeptAsGivenWhileOnlyItsLow32BitsSeedTheStream()
    {
        var wide = new TorchGenerator((1L << 32) + 7);
        var narrow = new TorchGenerator(7);

        Assert.Equal((1L << 32) + 7, wide.Seed);
        Assert.Equal(narrow.Normal(100), wide.Normal(100));
    }

    [Fact]
    public void NegativeCountIsRejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new TorchGenerator(0).Normal(-1));

    [Fact]
    public void UndefinedKernelIsRejected()
    {
        var error = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new TorchGenerator(0, (TorchCpuKernel)7));
        Assert.Contains("Avx2 or Default", error.Message);
    }

    private static TorchGenerator Create(long seed, TorchCpuKernel kernel, bool vectorized)
    {
        if (vectorized && !CephesBoxMuller.IsVectorized)
            Assert.Skip("This machine has no 256-bit SIMD with FMA; the per-lane form covers the same numbers.");
        return new TorchGenerator(seed, kernel, vectorized);
    }

    /// <summary>Every recorded draw of a section, for the AVX2 kernel in both forms and for the default kernel.</summary>
    private static TheoryData<TorchCpuKernel, bool, int> Cases(string section)
    {
        var data = new TheoryData<TorchCpuKernel, bool, int>();
        (TorchCpuKernel Kernel, bool Vectorized)[] paths = [(TorchCpuKernel.Avx2, true), (TorchCpuKernel.Avx2, false), (TorchCpuKernel.Default, false)];
        foreach (var (kernel, vectorized) in paths)
        {
            var count = TorchRandnReference.Kernel(kernel).GetProperty(section).GetArrayLength();
            for (var i = 0; i < count; i++)
                data.Add(kernel, vectorized, i);
        }
        return data;
    }
}
