namespace LocalDiffusion.Benchmarking;

/// <summary>A base-10 logarithmic axis: maps values to pixels and picks 1-2-5 ticks.</summary>
internal sealed class LogAxis
{
    private readonly double _low, _high; // log10 of the ends
    private readonly float _from, _to;    // pixels of the ends

    /// <summary>An axis covering the positive <paramref name="values"/> with some margin, drawn from pixel <paramref name="from"/> to <paramref name="to"/>.</summary>
    public LogAxis(IEnumerable<double> values, float from, float to)
    {
        var logs = values.Where(v => v > 0 && double.IsFinite(v)).Select(Math.Log10).ToList();
        double low = logs.Count > 0 ? logs.Min() : 0, high = logs.Count > 0 ? logs.Max() : 1;
        var pad = Math.Max((high - low) * 0.06, 0.1);
        (_low, _high, _from, _to) = (low - pad, high + pad, from, to);
    }

    public float Map(double value) => (float)(_from + (Math.Log10(value) - _low) / (_high - _low) * (_to - _from));

    /// <summary>
    /// <paramref name="preferred"/> (e.g. the step counts run) when there are at most ten of them, else 1, 2 and
    /// 5 × 10^k inside the axis; the axis ends when fewer than two fall inside.
    /// </summary>
    public IReadOnlyList<double> Ticks(IEnumerable<double>? preferred = null)
    {
        var wanted = preferred?.Where(Inside).Distinct().Order().ToList();
        if (wanted is { Count: >= 2 and <= 10 }) return wanted;
        var ticks = new List<double>();
        for (var k = (int)Math.Floor(_low); k <= (int)Math.Ceiling(_high); k++)
            foreach (var m in new[] { 1.0, 2.0, 5.0 })
                if (Inside(m * Math.Pow(10, k))) ticks.Add(m * Math.Pow(10, k));
        return ticks.Count >= 2 ? ticks : [Math.Pow(10, _low), Math.Pow(10, _high)];
    }

    private bool Inside(double v) => v > 0 && Math.Log10(v) >= _low && Math.Log10(v) <= _high;
}
