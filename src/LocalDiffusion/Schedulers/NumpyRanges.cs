namespace LocalDiffusion.Schedulers;

/// <summary>numpy's float64 <c>linspace</c> and <c>arange</c>, element-exact: diffusers derives inference timesteps from them.</summary>
internal static class NumpyRanges
{
    /// <summary><c>np.linspace(start, stop, num)</c>: i·step + start, the last point exactly stop.</summary>
    public static double[] Linspace(double start, double stop, int num)
    {
        var values = new double[num];
        if (num == 1)
        {
            values[0] = start;
            return values;
        }
        var step = (stop - start) / (num - 1);
        for (var i = 0; i < num; i++)
            values[i] = i * step + start;
        values[num - 1] = stop;
        return values;
    }

    /// <summary><c>np.arange(start, stop, step)</c> for floats: length ⌈(stop − start)/step⌉, element i = start + i·δ with δ = (start + step) − start.</summary>
    public static double[] Arange(double start, double stop, double step)
    {
        var length = Math.Max(0, (int)Math.Ceiling((stop - start) / step));
        var values = new double[length];
        var delta = start + step - start;
        for (var i = 0; i < length; i++)
            values[i] = start + i * delta;
        if (length > 1)
            values[1] = start + step;
        return values;
    }
}
