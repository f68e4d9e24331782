using System.Globalization;
using System.Text;

namespace LocalDiffusion.Tokenizer;

/// <summary>
/// HTML character references decoded the two ways CLIP's cleaning chain does: <see cref="Python"/> is Python's
/// <c>html.unescape</c> (HTML5 rules: named references without ';', longest-prefix names, Windows-1252 for C1
/// numeric references); <see cref="Strict"/> is ftfy's <c>unescape_html</c> (only references ending in ';',
/// plus all-caps names such as <c>&amp;EACUTE;</c>).
/// </summary>
internal static class HtmlUnescape
{
    private const int MaxPythonNameLength = 32;
    private const int MaxStrictNameLength = 24;

    /// <summary>ftfy's table: "&amp;name;" → text, for semicolon names and their all-caps forms.</summary>
    private static readonly Dictionary<string, string> StrictNames = BuildStrictNames();

    /// <summary>Python's <c>html.unescape</c>.</summary>
    public static string Python(string text)
    {
        var amp = text.IndexOf('&');
        if (amp < 0)
            return text;
        var sb = new StringBuilder(text.Length);
        sb.Append(text, 0, amp);
        var i = amp;
        while (i < text.Length)
        {
            if (text[i] == '&' && TryPythonReference(text, i, sb, out var consumed))
            {
                i += consumed;
                continue;
            }
            sb.Append(text[i]);
            i++;
        }
        return sb.ToString();
    }

    /// <summary>ftfy's <c>unescape_html</c>: <c>&amp;#?[0-9A-Za-z]{1,24};</c> references only.</summary>
    public static string Strict(string text)
    {
        if (!text.Contains('&'))
            return text;
        var sb = new StringBuilder(text.Length);
        var i = 0;
        while (i < text.Length)
        {
            var length = text[i] == '&' ? StrictReferenceLength(text, i) : 0;
            if (length == 0)
            {
                sb.Append(text[i]);
                i++;
                continue;
            }
            var reference = text.Substring(i, length);
            if (StrictNames.TryGetValue(reference, out var named))
                sb.Append(named);
            else if (reference[1] == '#')
            {
                var decoded = Python(reference);
                // ftfy keeps a numeric reference that html.unescape only partly consumed.
                sb.Append(decoded.Contains(';') ? reference : decoded);
            }
            else
                sb.Append(reference);
            i += length;
        }
        return sb.ToString();
    }

    /// <summary>Length of a <c>&amp;#?[0-9A-Za-z]{1,24};</c> match at <paramref name="start"/>, or 0.</summary>
    private static int StrictReferenceLength(string text, int start)
    {
        var i = start + 1;
        if (i < text.Length && text[i] == '#')
            i++;
        var nameStart = i;
        while (i < text.Length && i - nameStart < MaxStrictNameLength && char.IsAsciiLetterOrDigit(text[i]))
            i++;
        return i > nameStart && i < text.Length && text[i] == ';' ? i + 1 - start : 0;
    }

    /// <summary>One match of Python's <c>&amp;(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f &lt;&amp;#;]{1,32};?)</c>.</summary>
    private static bool TryPythonReference(string text, int amp, StringBuilder sb, out int consumed)
    {
        var i = amp + 1;
        consumed = 0;
        if (i >= text.Length)
            return false;
        if (text[i] == '#')
            return TryNumericReference(text, amp, sb, out consumed);

        var nameStart = i;
        while (i < text.Length && i - nameStart < MaxPythonNameLength && !IsNameStop(text[i]))
            i++;
        if (i == nameStart)
            return false;
        if (i < text.Length && text[i] == ';')
            i++;
        consumed = i - amp;
        var name = text.AsSpan(nameStart, i - nameStart);
        var lookup = Html5Entities.ByName.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(name, out var value))
        {
            sb.Append(value);
            return true;
        }
        for (var x = Math.Min(name.Length - 1, Html5Entities.MaxNameLength); x > 1; x--)
        {
            if (lookup.TryGetValue(name[..x], out value))
            {
                sb.Append(value).Append(name[x..]);
                return true;
            }
        }
        sb.Append('&').Append(name);
        return true;
    }

    private static bool IsNameStop(char c) => c is '\t' or '\n' or '\f' or ' ' or '<' or '&' or '#' or ';';

    private static bool TryNumericReference(string text, int amp, StringBuilder sb, out int consumed)
    {
        var i = amp + 2;
        var hex = i + 1 < text.Length && text[i] is 'x' or 'X' && char.IsAsciiHexDigit(text[i + 1]);
        if (hex)
            i++;
        var digitsStart = i;
        while (i < text.Length && (hex ? char.IsAsciiHexDigit(text[i]) : char.IsAsciiDigit(text[i])))
            i++;
        consumed = 0;
        if (i == digitsStart)
            return false;
        var digits = text.AsSpan(digitsStart, i - digitsStart);
        if (i < text.Length && text[i] == ';')
            i++;
        consumed = i - amp;
        sb.Append(CharacterForNumber(ParseCapped(digits, hex ? 16 : 10)));
        return true;
    }

    /// <summary>The number, or int.MaxValue when it exceeds any code point (Python has big integers).</summary>
    private static int ParseCapped(ReadOnlySpan<char> digits, int radix)
    {
        long value = 0;
        foreach (var c in digits)
        {
            value = value * radix + (char.IsAsciiDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
            if (value > 0x10FFFF)
                return int.MaxValue;
        }
        return (int)value;
    }

    /// <summary>Python's <c>_replace_charref</c> rules for a numeric reference.</summary>
    private static string CharacterForNumber(int number)
    {
        if (number == 0)
            return "\uFFFD";
        if (number == 0x0D)
            return "\r";
        if (Windows1252.IsC1(number))
            return Windows1252.FromC1(number).ToString();
        if (number is >= 0xD800 and <= 0xDFFF or > 0x10FFFF)
            return "\uFFFD";
        if (IsInvalidCodePoint(number))
            return "";
        return char.ConvertFromUtf32(number);
    }

    /// <summary>Python's <c>html._invalid_codepoints</c> (C1 and 0x0D are handled before).</summary>
    private static bool IsInvalidCodePoint(int n) =>
        n is >= 0x01 and <= 0x08 or 0x0B or >= 0x0E and <= 0x1F or 0x7F or >= 0xFDD0 and <= 0xFDEF
        || (n & 0xFFFE) == 0xFFFE;

    private static Dictionary<string, string> BuildStrictNames()
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in Html5Entities.ByName)
        {
            if (!name.EndsWith(';'))
                continue;
            names["&" + name] = value;
            if (name != name.ToLowerInvariant())
                continue;
            // ftfy also accepts an all-caps name when html.unescape would leave it alone.
            var upper = "&" + name.ToUpperInvariant();
            if (Python(upper) == upper)
                names.TryAdd(upper, PythonText.UpperOfEntityValue(value));
        }
        return names;
    }
}
