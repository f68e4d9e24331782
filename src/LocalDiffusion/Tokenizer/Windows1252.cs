namespace LocalDiffusion.Tokenizer;

/// <summary>
/// The C1 range (0x80–0x9F) read as Windows-1252, the way browsers, Python's <c>html.unescape</c> and ftfy's
/// "sloppy" codec do: the five bytes Windows-1252 leaves undefined map to themselves.
/// </summary>
internal static class Windows1252
{
    private static readonly char[] C1 =
    [
        '\u20AC', '\u0081', '\u201A', '\u0192', '\u201E', '\u2026', '\u2020', '\u2021',
        '\u02C6', '\u2030', '\u0160', '\u2039', '\u0152', '\u008D', '\u017D', '\u008F',
        '\u0090', '\u2018', '\u2019', '\u201C', '\u201D', '\u2022', '\u2013', '\u2014',
        '\u02DC', '\u2122', '\u0161', '\u203A', '\u0153', '\u009D', '\u017E', '\u0178',
    ];

    /// <summary>
    /// The byte <paramref name="c"/> came from when text was decoded as Windows-1252 or Latin-1 (whichever
    /// defines it), or -1 when neither can produce it.
    /// </summary>
    public static int ByteOf(char c)
    {
        if (c < 0x100)
            return c;
        var index = Array.IndexOf(C1, c);
        return index < 0 ? -1 : 0x80 + index;
    }

    /// <summary>True for U+0080..U+009F.</summary>
    public static bool IsC1(int codePoint) => codePoint is >= 0x80 and <= 0x9F;

    /// <summary>The Windows-1252 character for a C1 code point (see <see cref="IsC1"/>).</summary>
    public static char FromC1(int codePoint) => C1[codePoint - 0x80];
}
