using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Tests.Tokenizer;

/// <summary>
/// The Python behaviours CLIP's cleaning relies on. Expected values: Python 3.11.2 <c>html.unescape</c> and
/// <c>str.lower()</c> run on these inputs; the ftfy ones are the doctests of ftfy 6.3.1 <c>fixes.unescape_html</c>.
/// </summary>
public class PythonSemanticsTests
{
    [Theory]
    [InlineData("&amp roll", "& roll")]
    [InlineData("&copy 2023", "\u00A9 2023")]
    [InlineData("R&D, AT&T", "R&D, AT&T")]
    [InlineData("A&amp;amp;B", "A&amp;B")]
    [InlineData("&notit;", "\u00ACit;")]
    [InlineData("&notin;", "\u2209")]
    [InlineData("&#x263A;", "\u263A")]
    [InlineData("&#39;", "'")]
    [InlineData("&#128;", "\u20AC")]
    [InlineData("&#0;", "\uFFFD")]
    [InlineData("&#xD800;", "\uFFFD")]
    [InlineData("&#1114112;", "\uFFFD")]
    [InlineData("&#x1F600", "\U0001F600")]
    [InlineData("&#65abc", "Aabc")]
    [InlineData("&#;", "&#;")]
    [InlineData("&;", "&;")]
    [InlineData("&ampx", "&x")]
    [InlineData("&Eacute", "\u00C9")]
    [InlineData("&EACUTE;", "&EACUTE;")]
    [InlineData("&lt3", "<3")]
    [InlineData("&#13;", "\r")]
    public void HtmlUnescapeMatchesPython(string input, string expected) => Assert.Equal(expected, HtmlUnescape.Python(input));

    [Theory]
    [InlineData("&lt;tag&gt;", "<tag>")]
    [InlineData("&Jscr;ohn &HilbertSpace;ancock", "\U0001D4A5ohn \u210Bancock")]
    [InlineData("&checkmark;", "\u2713")]
    [InlineData("P&eacute;rez", "P\u00E9rez")]
    [InlineData("P&EACUTE;REZ", "P\u00C9REZ")]
    [InlineData("BUNDESSTRA&SZLIG;E", "BUNDESSTRASSE")]
    [InlineData("&ntilde; &Ntilde; &NTILDE; &nTILDE;", "\u00F1 \u00D1 \u00D1 &nTILDE;")]
    [InlineData("&amp roll", "&amp roll")]
    public void StrictUnescapeMatchesFtfy(string input, string expected) => Assert.Equal(expected, HtmlUnescape.Strict(input));

    [Theory]
    [InlineData("\u039F\u0394\u039F\u03A3 \u0391\u0398\u0397\u039D\u0391\u03A3.", "\u03BF\u03B4\u03BF\u03C2 \u03B1\u03B8\u03B7\u03BD\u03B1\u03C2.")]
    [InlineData("\u03A3", "\u03C3")]
    [InlineData("\u0391\u03A3'\u0392", "\u03B1\u03C3'\u03B2")]
    [InlineData("\u0391\u03A3", "\u03B1\u03C2")]
    [InlineData("A\u03A3!", "a\u03C2!")]
    [InlineData("\u0130STANBUL", "i\u0307stanbul")]
    public void LowerMatchesPython(string input, string expected) => Assert.Equal(expected, PythonText.Lower(input));
}
