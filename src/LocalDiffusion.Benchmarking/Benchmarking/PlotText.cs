using ScottPlot;
using SkiaSharp;

namespace LocalDiffusion.Benchmarking;

/// <summary>
/// Labels for the image grid, drawn with ScottPlot's text styles (its font detection and glyph fallback) on the
/// grid's Skia canvas. Where no font at all is installed (a bare container), <see cref="Available"/> is false and
/// nothing is drawn.
/// </summary>
internal static class PlotText
{
    /// <summary>Whether ScottPlot's default font has the glyphs of digits and Latin letters.</summary>
    public static bool Available { get; } = Detect();

    /// <summary>
    /// Draws <paramref name="text"/> with its left end at <paramref name="x"/> (or centred on it) and its baseline
    /// at <paramref name="y"/>, shrunk to fit <paramref name="maxWidth"/> when it is too long.
    /// </summary>
    public static void Draw(SKCanvas canvas, string text, float x, float y, float size, Color color,
        bool centred = false, float maxWidth = float.PositiveInfinity)
    {
        if (!Available) return;
        using var paint = Paint.NewDisposablePaint();
        var style = new LabelStyle { Text = text, FontSize = size, ForeColor = color, AntiAliasText = true };
        var width = style.Measure(paint).Width;
        if (width > maxWidth)
        {
            style.FontSize = size * maxWidth / width;
            width = maxWidth;
        }
        style.Alignment = Alignment.LowerLeft;
        style.Render(canvas, new Pixel(centred ? x - width / 2 : x, y), paint);
    }

    private static bool Detect()
    {
        try
        {
            var typeface = Fonts.GetTypeface(Fonts.Default, bold: false, italic: false);
            return typeface is not null && typeface.GlyphCount > 0 && typeface.ContainsGlyphs("0123456789.e-Steps");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or NullReferenceException)
        {
            return false;
        }
    }
}
