using System.Globalization;
using ScottPlot;

namespace LocalDiffusion.Benchmarking;

/// <summary>Which error a convergence plot shows.</summary>
public enum ConvergenceMetric
{
    /// <summary>RMSE of the final latents.</summary>
    LatentRmse,
    /// <summary>RMSE of the decoded RGB8 pixels.</summary>
    ImageRmse,
}

/// <summary>
/// Error against the reference vs UNet evaluations on log-log axes, one coloured line per scheduler, as a PNG
/// drawn by ScottPlot. Deterministic samplers fall as a straight line whose slope is their order; stochastic ones
/// level off.
/// </summary>
public static class ConvergencePlot
{
    /// <summary>Picture width in pixels.</summary>
    public const int Width = 1200;

    /// <summary>Picture height in pixels.</summary>
    public const int Height = 700;

    /// <summary>Whether a font with Latin letters and digits was found; without one, text is left out of the pictures.</summary>
    public static bool CanDrawText => PlotText.Available;

    /// <summary>The plot as PNG bytes. Rows whose error is 0 (the reference itself) have no point on a log axis and are left out.</summary>
    public static byte[] Render(SchedulerBenchmarkReport report, ConvergenceMetric metric = ConvergenceMetric.LatentRmse)
    {
        ArgumentNullException.ThrowIfNull(report);
        Func<SchedulerBenchmarkRow, double> error = metric == ConvergenceMetric.LatentRmse ? r => r.LatentRmse : r => r.ImageRmse;
        var plot = new Plot();
        // Tableau's 10 colours, or its 20 (light and dark pairs) for more lines; beyond those, colours repeat dashed.
        var ids = report.SchedulerIds;
        IPalette palette = ids.Count <= 10 ? new ScottPlot.Palettes.Category10() : new ScottPlot.Palettes.Category20();
        for (var s = 0; s < ids.Count; s++)
        {
            var first = report.Rows.First(r => r.SchedulerId == ids[s]);
            var rows = report.Rows.Where(r => r.SchedulerId == ids[s] && error(r) > 0 && double.IsFinite(error(r)))
                .OrderBy(r => r.UnetEvaluations).ToList();
            // ScottPlot has no log axis: the data are plotted as log10 and the ticks labelled with the real values.
            var line = plot.Add.Scatter(rows.Select(r => Math.Log10(r.UnetEvaluations)).ToArray(), rows.Select(r => Math.Log10(error(r))).ToArray());
            line.Color = palette.GetColor(s);
            line.LineWidth = 2.5f;
            line.MarkerSize = 8;
            line.LinePattern = s >= palette.Colors.Length ? LinePattern.Dashed : LinePattern.Solid;
            if (CanDrawText) line.LegendText = first.DisplayName + (first.IsStochastic ? " (stochastic)" : "");
        }

        // Ticks at the step counts run (second-order samplers' points sit just left of them, at 2n − 1 evaluations).
        var steps = report.StepCounts.Select(n => (double)n).ToList();
        plot.Axes.Bottom.TickGenerator = steps.Count is >= 2 and <= 10 ? Manual(steps) : LogTicks();
        var errors = report.Rows.Select(error).Where(e => e > 0 && double.IsFinite(e)).ToList();
        plot.Axes.Left.TickGenerator = errors.Count > 0 ? Manual(OneTwoFive(errors.Min(), errors.Max())) : LogTicks();
        if (CanDrawText)
        {
            var what = metric == ConvergenceMetric.LatentRmse ? "latent RMSE" : "image RMSE (0-255)";
            plot.Title($"Convergence to {report.Reference}: {what} vs UNet evaluations", size: 17);
            plot.XLabel("UNet evaluations per image", size: 13);
            plot.YLabel(what, size: 13);
            plot.ShowLegend(Edge.Right);
        }
        else
        {
            // No font: ScottPlot could only draw empty boxes for the labels.
            plot.Axes.Bottom.TickLabelStyle.IsVisible = false;
            plot.Axes.Left.TickLabelStyle.IsVisible = false;
        }
        return plot.GetImageBytes(Width, Height, ImageFormat.Png);
    }

    private static ScottPlot.TickGenerators.NumericManual Manual(IEnumerable<double> values)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var v in values) ticks.AddMajor(Math.Log10(v), v.ToString("G3", CultureInfo.InvariantCulture));
        return ticks;
    }

    // 1, 2 and 5 × 10^k from just below the smallest value to just above the largest; powers of ten alone when that is too many.
    private static List<double> OneTwoFive(double min, double max)
    {
        var ticks = new List<double>();
        for (var k = (int)Math.Floor(Math.Log10(min)); k <= (int)Math.Ceiling(Math.Log10(max)); k++)
            foreach (var m in new[] { 1.0, 2.0, 5.0 })
                ticks.Add(m * Math.Pow(10, k));
        var low = ticks.LastOrDefault(t => t <= min, ticks[0]);
        var high = ticks.FirstOrDefault(t => t >= max, ticks[^1]);
        ticks = ticks.Where(t => t >= low && t <= high).ToList();
        return ticks.Count <= 12 ? ticks : ticks.Where(t => Math.Abs(Math.Log10(t) - Math.Round(Math.Log10(t))) < 1e-9).ToList();
    }

    // Major ticks at whole powers of ten, 2…9 × 10^k as minor ticks, as on log paper.
    private static ScottPlot.TickGenerators.NumericAutomatic LogTicks() => new()
    {
        MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        IntegerTicksOnly = true,
        LabelFormatter = y => Math.Pow(10, y).ToString("G3", CultureInfo.InvariantCulture),
    };
}
