using LocalDiffusion.Imaging;
using ScottPlot;
using SkiaSharp;

namespace LocalDiffusion.Benchmarking;

/// <summary>
/// AUTOMATIC1111's X/Y grid for a benchmark: rows = schedulers, columns = step counts, each cell the first case's
/// picture (small pictures scaled up by a whole factor with nearest-neighbour sampling), labelled at the left and top (text by ScottPlot);
/// a last column shows the reference solution's picture in the first row.
/// </summary>
public static class ImageGrid
{
    /// <summary>Width of the row-label column in pixels.</summary>
    public const int LabelWidth = 170;

    /// <summary>Height of the title band (prompt and seed) in pixels.</summary>
    public const int TitleHeight = 30;

    /// <summary>Height of the column-label band in pixels.</summary>
    public const int HeaderHeight = 26;

    /// <summary>Space between and around cells in pixels.</summary>
    public const int Gap = 4;

    /// <summary>Pictures smaller than this are scaled up by the smallest whole factor that reaches it.</summary>
    public const int MinCellSide = 128;

    /// <summary>The whole factor a picture of <paramref name="width"/>×<paramref name="height"/> is scaled by.</summary>
    public static int Scale(int width, int height) => Math.Max(1, (MinCellSide + Math.Max(width, height) - 1) / Math.Max(width, height));

    /// <summary>The grid as PNG bytes.</summary>
    public static byte[] Render(SchedulerBenchmarkReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var steps = report.StepCounts;
        var ids = report.SchedulerIds;
        var scale = Scale(report.Width, report.Height);
        int cellW = report.Width * scale, cellH = report.Height * scale;
        var width = LabelWidth + (steps.Count + 1) * (cellW + Gap) + Gap;
        var height = TitleHeight + HeaderHeight + ids.Count * (cellH + Gap) + Gap;

        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        var ink = Colors.Black;
        var grey = new Color(0x70, 0x70, 0x70);

        if (report.Cases.Count > 0)
            PlotText.Draw(canvas, $"\"{report.Cases[0].Prompt}\", seed {report.Cases[0].Seed}, guidance {report.GuidanceScale}",
                Gap, TitleHeight - 9, 14, ink, maxWidth: width - 2 * Gap);
        for (var c = 0; c < steps.Count; c++)
            PlotText.Draw(canvas, $"{steps[c]} steps", LabelWidth + c * (cellW + Gap) + cellW / 2f, TitleHeight + HeaderHeight - 8, 14, ink, centred: true);

        var referenceLeft = LabelWidth + steps.Count * (cellW + Gap);
        PlotText.Draw(canvas, "reference", referenceLeft + cellW / 2f, TitleHeight + HeaderHeight - 20, 11, grey, centred: true);
        PlotText.Draw(canvas, report.Reference.ToString(), referenceLeft + cellW / 2f, TitleHeight + HeaderHeight - 8, 11, ink, centred: true);
        if (report.ReferenceSample is { } referencePicture)
            DrawPicture(canvas, referencePicture, referenceLeft, TitleHeight + HeaderHeight, cellW, cellH);

        for (var r = 0; r < ids.Count; r++)
        {
            var top = TitleHeight + HeaderHeight + r * (cellH + Gap);
            var rows = report.Rows.Where(x => x.SchedulerId == ids[r]).ToList();
            PlotText.Draw(canvas, rows[0].DisplayName, Gap, top + cellH / 2f, 14, ink, maxWidth: LabelWidth - 2 * Gap);
            PlotText.Draw(canvas, rows[0].SchedulerId, Gap, top + cellH / 2f + 16, 11, grey, maxWidth: LabelWidth - 2 * Gap);
            for (var c = 0; c < steps.Count; c++)
            {
                if (rows.FirstOrDefault(x => x.Steps == steps[c])?.Sample is { } sample)
                    DrawPicture(canvas, sample, LabelWidth + c * (cellW + Gap), top, cellW, cellH);
            }
        }
        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    private static void DrawPicture(SKCanvas canvas, GeneratedImage image, float left, float top, int width, int height)
    {
        using var picture = SKImage.FromEncodedData(image.EncodePng(new Dictionary<string, string>()));
        canvas.DrawImage(picture, new SKRect(left, top, left + width, top + height), new SKSamplingOptions(SKFilterMode.Nearest));
    }
}
