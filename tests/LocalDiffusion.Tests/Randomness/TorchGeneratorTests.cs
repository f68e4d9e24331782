using LocalDiffusion.Randomness;

namespace LocalDiffusion.Tests.Randomness;

/// <summary>TorchGenerator against torch.randn (see <see cref="TorchRandnReference"/>), on both Box–Muller paths.</summary>
public class TorchGeneratorTests
{
    public static TheoryData<int, bool> SingleDraws => Cases(TorchRandnReference.SingleCount);

    public static TheoryData<int, bool> Sequences => Cases(TorchRandnReference.SequenceCount);

    [Theory]
    [MemberData(nameof(SingleDraws))]
    public void OneDrawFromAFreshGeneratorMatchesTorch(int index, bool vectorized)
    {
        var draw = TorchRandnReference.Single(index);
        var seed = draw.GetProperty("seed").GetInt64();
        var generator = Create(seed, vectorized);

        var values = generator.Normal(draw.GetProperty("count").GetInt32());

        TorchRandnReference.AssertSameBits(draw, values, $"seed {seed}, randn({values.Length})");
    }

    [Theory]
    [MemberData(nameof(Sequences))]
    public void ConsecutiveDrawsContinueTheStreamLikeTorch(int index, bool vectorized)
    {
        var sequence = TorchRandnReference.Sequence(index);
        var seed = sequence.GetProperty("seed").GetInt64();
        var generator = Create(seed, vectorized);

        var call = 0;
        foreach (var draw in sequence.GetProperty("draws").EnumerateArray())
        {
            var values = new float[draw.GetProperty("count").GetInt32()];
            generator.FillNormal(values);
            TorchRandnReference.AssertSameBits(draw, values, $"seed {seed}, call {call++}: randn({values.Length})");
        }
    }

    [Fact]
    public void ReferenceNumbersCameFromTheAvx2Kernel() =>
        Assert.Equal("AVX2", TorchRandnReference.Root.GetProperty("cpu_capability").GetString());

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

    private static TorchGenerator Create(long seed, bool vectorized)
    {
        if (vectorized && !CephesBoxMuller.IsVectorized)
            Assert.Skip("This machine has no 256-bit SIMD with FMA; the per-lane path covers the same numbers.");
        return new TorchGenerator(seed, vectorized);
    }

    private static TheoryData<int, bool> Cases(int count)
    {
        var data = new TheoryData<int, bool>();
        for (var i = 0; i < count; i++)
        {
            data.Add(i, true);
            data.Add(i, false);
        }
        return data;
    }
}
