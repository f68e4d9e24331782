using System.Globalization;
using SkiaSharp;

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
/// Error against the reference vs UNet evaluations on log-log axes, one coloured line per scheduler, as a PNG.
/// Deterministic samplers fall as a straight line whose slope is their order; stochastic ones level off.
/// </summary>
public static class ConvergencePlot
{
    /// <summary>Picture width in pixels.</summary>
    public const int Width = 1200;

    /// <summary>Picture height in pixels.</summary>
    public const int Height = 700;

    /// <summary>Whether a font was found; without one, plots and grids are drawn without text.</summary>
    public static bool CanDrawText => PlotFont.Typeface is not null;

    private const float Left = 90, Right = Width - 370, Top = 60, Bottom = Height - 70;

    // Tableau 10, so neighbouring lines are told apart; after ten, the colours repeat dashed.
    private static readonly SKColor[] Palette =
    [
        new(0x1f, 0x77, 0xb4), new(0xff, 0x7f, 0x0e), new(0x2c, 0xa0, 0x2c), new(0xd6, 0x27, 0x28), new(0x94, 0x67, 0xbd),
        new(0x8c, 0x56, 0x4b), new(0xe3, 0x77, 0xc2), new(0x7f, 0x7f, 0x7f), new(0xbc, 0xbd, 0x22), new(0x17, 0xbe, 0xcf),
    ];

    /// <summary>The plot as PNG bytes. Rows whose error is 0 (the reference itself) have no point on a log axis and are left out.</summary>
    public static byte[] Render(SchedulerBenchmarkReport report, ConvergenceMetric metric = ConvergenceMetric.LatentRmse)
    {
        ArgumentNullException.ThrowIfNull(report);
        Func<SchedulerBenchmarkRow, double> error = metric == ConvergenceMetric.LatentRmse ? r => r.LatentRmse : r => r.ImageRmse;
        var x = new LogAxis(report.Rows.Select(r => (double)r.UnetEvaluations), Left, Right);
        var y = new LogAxis(report.Rows.Select(error), Bottom, Top);

        using var surface = SKSurface.Create(new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        DrawAxes(canvas, x, y, report.StepCounts.Select(n => (double)n));

        using var labels = PlotFont.Create(13);
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        var ids = report.SchedulerIds;
        for (var s = 0; s < ids.Count; s++)
        {
            var rows = report.Rows.Where(r => r.SchedulerId == ids[s]).OrderBy(r => r.UnetEvaluations).ToList();
            using var line = new SKPaint
            {
                Color = Palette[s % Palette.Length], StrokeWidth = 2.5f, IsAntialias = true, Style = SKPaintStyle.Stroke,
                PathEffect = s >= Palette.Length ? SKPathEffect.CreateDash([8, 5], 0) : null,
            };
            using var dot = new SKPaint { Color = line.Color, IsAntialias = true, Style = SKPaintStyle.Fill };
            using var path = new SKPath();
            foreach (var row in rows.Where(r => error(r) > 0 && double.IsFinite(error(r))))
            {
                var p = new SKPoint(x.Map(row.UnetEvaluations), y.Map(error(row)));
                if (path.IsEmpty) path.MoveTo(p); else path.LineTo(p);
                canvas.DrawCircle(p, 4, dot);
            }
            canvas.DrawPath(path, line);

            // Legend entry: a line sample, then the name.
            var ly = Top + 10 + s * 22;
            canvas.DrawLine(Right + 20, ly, Right + 50, ly, line);
            canvas.DrawCircle(Right + 35, ly, 4, dot);
            if (labels is not null)
                canvas.DrawText(rows[0].DisplayName + (rows[0].IsStochastic ? " (stochastic)" : ""), Right + 58, ly + 5, labels, text);
        }

        using var title = PlotFont.Create(17);
        if (title is not null)
        {
            var what = metric == ConvergenceMetric.LatentRmse ? "latent RMSE" : "image RMSE (0-255)";
            canvas.DrawText($"Convergence to {report.Reference}: {what} vs UNet evaluations", Left, 32, SKTextAlign.Left, title, text);
            canvas.DrawText("UNet evaluations per image", (Left + Right) / 2, Height - 22, SKTextAlign.Center, labels!, text);
            canvas.Save();
            canvas.RotateDegrees(-90, 24, (Top + Bottom) / 2);
            canvas.DrawText(what, 24, (Top + Bottom) / 2, SKTextAlign.Center, labels!, text);
            canvas.Restore();
        }
        return PngOf(surface);
    }

    private static void DrawAxes(SKCanvas canvas, LogAxis x, LogAxis y, IEnumerable<double> stepCounts)
    {
        var ci = CultureInfo.InvariantCulture;
        using var grid = new SKPaint { Color = new SKColor(0xe4, 0xe4, 0xe4), StrokeWidth = 1 };
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1.5f, IsAntialias = true };
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var font = PlotFont.Create(12);
        foreach (var v in x.Ticks(stepCounts))
        {
            var px = x.Map(v);
            canvas.DrawLine(px, Top, px, Bottom, grid);
            canvas.DrawLine(px, Bottom, px, Bottom + 6, axis);
            if (font is not null) canvas.DrawText(v.ToString("G3", ci), px, Bottom + 22, SKTextAlign.Center, font, text);
        }
        foreach (var v in y.Ticks())
        {
            var py = y.Map(v);
            canvas.DrawLine(Left, py, Right, py, grid);
            canvas.DrawLine(Left - 6, py, Left, py, axis);
            if (font is not null) canvas.DrawText(v.ToString("G3", ci), Left - 10, py + 4, SKTextAlign.Right, font, text);
        }
        canvas.DrawLine(Left, Bottom, Right, Bottom, axis);
        canvas.DrawLine(Left, Top, Left, Bottom, axis);
    }

    internal static byte[] PngOf(SKSurface surface)
    {
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
