namespace LocalDiffusion.Tests.Schedulers;

/// <summary>
/// Float32 comparison against diffusers: |actual − expected| ≤ relative·|expected| + absolute. The default
/// (1e-5 relative, 1e-6 absolute floor for values near zero) allows the last-bit differences of float32 math
/// (e.g. numpy's SIMD log vs .NET's) accumulated over a run.
/// </summary>
internal static class Tolerance
{
    public const double Relative = 1e-5;
    public const double Absolute = 1e-6;

    public static void AssertClose(IReadOnlyList<float> expected, IReadOnlyList<float> actual, string what,
        double relative = Relative, double absolute = Absolute)
    {
        Assert.True(expected.Count == actual.Count, $"{what}: expected {expected.Count} values, got {actual.Count}.");
        for (var i = 0; i < expected.Count; i++)
        {
            var error = Math.Abs((double)actual[i] - expected[i]);
            var allowed = relative * Math.Abs((double)expected[i]) + absolute;
            Assert.True(error <= allowed,
                $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (error {error:G3} > allowed {allowed:G3}).");
        }
    }
}
