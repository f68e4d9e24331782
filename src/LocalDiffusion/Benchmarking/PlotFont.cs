using SkiaSharp;

namespace LocalDiffusion.Benchmarking;

/// <summary>
/// The typeface for plot text: a common sans-serif family if installed, else the platform default. Where no font
/// at all is available (a bare container), <see cref="Typeface"/> is null and plots are drawn without text.
/// </summary>
internal static class PlotFont
{
    private static readonly string[] SansFamilies = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica", "Segoe UI", "Noto Sans"];

    /// <summary>A typeface that has glyphs for digits and letters, or null.</summary>
    public static SKTypeface? Typeface { get; } = Find();

    /// <summary>A font of <paramref name="size"/> pixels, or null when there is no usable typeface.</summary>
    public static SKFont? Create(float size) => Typeface is null ? null : new SKFont(Typeface, size) { Subpixel = true, Edging = SKFontEdging.Antialias };

    private static SKTypeface? Find() =>
        SansFamilies.Select(f => SKFontManager.Default.MatchFamily(f)).Append(SKTypeface.Default)
            .FirstOrDefault(t => t is not null && t.GlyphCount > 0 && t.ContainsGlyphs("0123456789.e-Steps"));
}
