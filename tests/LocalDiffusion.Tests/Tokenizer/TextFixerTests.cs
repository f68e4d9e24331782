using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Tests.Tokenizer;

/// <summary>ftfy-like fixes; expected values are the examples of ftfy 6.3.1's README and fixes.py doctests.</summary>
public class TextFixerTests
{
    [Theory]
    [InlineData("\u00E2\u0153\u201D No problems", "\u2714 No problems")]
    [InlineData("The Mona Lisa doesn\u00C3\u0192\u00C2\u00A2\u00C3\u00A2\u00E2\u20AC\u0161\u00C2\u00AC\u00C3\u00A2\u00E2\u20AC\u017E\u00C2\u00A2t have eyebrows.",
        "The Mona Lisa doesn't have eyebrows.")]
    [InlineData("l\u2019humanit\u00C3\u00A9", "l'humanit\u00E9")]
    [InlineData("IL Y MARQU\u00C9\u2026", "IL Y MARQU\u00C9\u2026")]
    [InlineData("P&EACUTE;REZ", "P\u00C9REZ")]
    [InlineData("<tag>&amp;", "<tag>&amp;")]
    [InlineData("\uFF2C\uFF2F\uFF35\uFF24 \uFF2E\uFF2F\uFF29\uFF33\uFF25\uFF33", "LOUD NOISES")]
    [InlineData("\uFF73\uFF80\uFF70\uFF9D", "\u30A6\u30BF\u30FC\u30F3")]
    [InlineData("\u201Chere\u2019s a test\u201D", "\"here's a test\"")]
    [InlineData("\uFB02\uFB01ne", "flfine")]
    [InlineData("\u001B[36;44mI'm blue, da ba dee da ba doo...\u001B[0m", "I'm blue, da ba dee da ba doo...")]
    [InlineData("a\r\nb\rc\u2028d", "a\nb\nc\nd")]
    [InlineData("\u0093quoted\u0094 \u0080 5", "\"quoted\" \u20AC 5")]
    [InlineData("bell\u0007 bom\uFEFF tab\t", "bell bom tab\t")]
    [InlineData("cafe\u0301", "caf\u00E9")]
    public void FixesLikeFtfy(string input, string expected) => Assert.Equal(expected, TextFixer.Fix(input));

    /// <summary>ftfy 6.3.1 fix_text: once a line holds '&lt;', later lines are not HTML-unescaped either.</summary>
    [Fact]
    public void HtmlUnescapingStopsAtTheFirstLineWithATag() =>
        Assert.Equal("&\n<b>&amp;\n&amp;", TextFixer.Fix("&amp;\n<b>&amp;\n&amp;"));
}
