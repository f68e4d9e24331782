using LocalDiffusion.Latents;

namespace LocalDiffusion.Tests.Latents;

/// <summary>.npy files written by numpy (TestData/Latents/README.md says how) and by us.</summary>
public class NpyFileTests
{
    // np.arange(24).reshape(2,3,4) * 0.5 - 3: every value is exact in float16/32/64.
    private static readonly float[] Expected = Enumerable.Range(0, 24).Select(i => i * 0.5f - 3f).ToArray();

    [Theory]
    [InlineData("arange_f4.npy")]
    [InlineData("arange_f2.npy")]
    [InlineData("arange_f8.npy")]
    public void ReadsWhatNumpyWrote(string file)
    {
        var (data, shape) = NpyFile.Read(TestPaths.TestData("Latents", file));
        Assert.Equal([2, 3, 4], shape);
        Assert.Equal(Expected, data);
    }

    [Fact]
    public void WriteThenReadRoundTripsAndMatchesNumpysBytes()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "out.npy");
        NpyFile.Write(path, Expected, [2, 3, 4]);

        // numpy 1.24 writes the same header and data for this array.
        Assert.Equal(File.ReadAllBytes(TestPaths.TestData("Latents", "arange_f4.npy")), File.ReadAllBytes(path));
        var (data, shape) = NpyFile.Read(path);
        Assert.Equal([2, 3, 4], shape);
        Assert.Equal(Expected, data);
    }

    [Fact]
    public void FortranOrderIsRefusedWithTheFix()
    {
        var e = Assert.Throws<InvalidDataException>(() => NpyFile.Read(TestPaths.TestData("Latents", "fortran_f4.npy")));
        Assert.Contains("fortran_order", e.Message);
        Assert.Contains("ascontiguousarray", e.Message);
    }

    [Fact]
    public void IntegerDtypeIsRefusedNamingIt()
    {
        var e = Assert.Throws<InvalidDataException>(() => NpyFile.Read(TestPaths.TestData("Latents", "int32.npy")));
        Assert.Contains("'<i4'", e.Message);
    }

    [Fact]
    public void NotAnNpyFileIsNamed()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "latents.npy");
        File.WriteAllText(path, "hello");
        var e = Assert.Throws<InvalidDataException>(() => NpyFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("magic", e.Message);
    }

    [Fact]
    public void WrongShapeForTheDataIsRefused() =>
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => NpyFile.Write(Path.GetTempFileName(), new float[5], [2, 3]));
}
