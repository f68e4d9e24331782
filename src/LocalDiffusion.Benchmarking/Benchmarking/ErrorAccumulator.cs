namespace LocalDiffusion.Benchmarking;

/// <summary>
/// Pools squared errors over the cases of one benchmark row, so RMSE and PSNR are over all prompts and seeds at
/// once (every case has the same size, so this is the mean of the per-case mean squared errors).
/// </summary>
internal sealed class ErrorAccumulator
{
    private double _sumSquares;
    private long _count;

    public void Add(ReadOnlySpan<float> values, ReadOnlySpan<float> reference)
    {
        // Double accumulation: float sums over 10^5+ squares lose digits the PSNR column shows.
        double sum = 0;
        for (var i = 0; i < values.Length; i++)
        {
            var d = (double)values[i] - reference[i];
            sum += d * d;
        }
        _sumSquares += sum;
        _count += values.Length;
    }

    public void Add(ReadOnlySpan<byte> values, ReadOnlySpan<byte> reference)
    {
        long sum = 0;
        for (var i = 0; i < values.Length; i++)
        {
            var d = values[i] - reference[i];
            sum += d * d;
        }
        _sumSquares += sum;
        _count += values.Length;
    }

    /// <summary>Root-mean-square error; 0 when identical.</summary>
    public double Rmse => _count == 0 ? double.NaN : Math.Sqrt(_sumSquares / _count);

    /// <summary>Peak signal-to-noise ratio in dB for signals spanning <paramref name="peak"/>; +∞ when identical.</summary>
    public double Psnr(double peak) => 20 * Math.Log10(peak / Rmse);
}
