using System.Text;

namespace LocalDiffusion.Tokenizer;

/// <summary>
/// The parts of ftfy 6.3 <c>fix_text</c> (default settings) that change real prompts: per line, repeated until
/// nothing changes — strict HTML unescape (until a line has '&lt;'), mojibake repair, C1 controls read as
/// Windows-1252, Latin ligatures split, fullwidth/halfwidth forms to standard width, curly quotes straightened,
/// line breaks unified, lone surrogates replaced, terminal escapes and control characters removed, then NFC.
/// Mojibake repair covers ftfy's common case only (see <see cref="RepairMojibake"/>).
/// </summary>
internal static class TextFixer
{
    /// <summary>ftfy's <c>fix_text</c> as described above.</summary>
    public static string Fix(string text)
    {
        var sb = new StringBuilder(text.Length);
        var start = 0;
        var unescape = true;
        while (start < text.Length)
        {
            var newline = text.IndexOf('\n', start);
            var end = newline < 0 ? text.Length : newline + 1;
            var segment = text[start..end];
            // ftfy turns HTML unescaping off at the first line with '<' and keeps it off for the lines after.
            unescape &= !segment.Contains('<');
            sb.Append(FixSegment(segment, unescape));
            start = end;
        }
        return sb.ToString();
    }

    private static string FixSegment(string segment, bool unescape)
    {
        while (true)
        {
            var original = segment;
            if (unescape)
                segment = HtmlUnescape.Strict(segment);
            // Layered mojibake is peeled before anything else changes it, as ftfy's fix_encoding loops itself.
            // Each repair shortens the text, so this ends.
            for (var repaired = RepairMojibake(segment); repaired != segment; repaired = RepairMojibake(segment))
                segment = repaired;
            segment = Translate(segment, CharacterFix);
            segment = FixLineBreaks(segment);
            segment = RemoveTerminalEscapes(segment);
            segment = Translate(segment, static c => IsRemovedControl(c) ? "" : null);
            if (!segment.IsNormalized(NormalizationForm.FormC))
                segment = segment.Normalize(NormalizationForm.FormC);
            if (segment == original)
                return segment;
        }
    }

    /// <summary>
    /// The common case of ftfy's <c>fix_encoding</c>: UTF-8 that was decoded as Windows-1252/Latin-1
    /// ("cafÃ©" → "café", "donâ€™t" → "don’t"). ftfy decides with a large badness heuristic; this keeps to the
    /// unmistakable signatures instead: the whole segment re-encodes to single bytes, those bytes are valid
    /// UTF-8, and every multi-byte sequence starts with Â, Ã (Latin-1 letters and signs) or â (punctuation).
    /// Legitimate text such as "JOSÉ’S" (É’ is valid UTF-8 too) is left alone; so are other code pages, mixed
    /// segments and ftfy's lossy-sequence repairs.
    /// </summary>
    private static string RepairMojibake(string segment)
    {
        var bytes = new byte[segment.Length];
        var multiByteLead = false;
        for (var i = 0; i < segment.Length; i++)
        {
            var b = Windows1252.ByteOf(segment[i]);
            if (b < 0)
                return segment;
            bytes[i] = (byte)b;
            if (b >= 0xC0 && b is not (0xC2 or 0xC3 or 0xE2))
                return segment;
            multiByteLead |= b >= 0xC0;
        }
        if (!multiByteLead)
            return segment;
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return segment;
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Applies a per-character fix to every UTF-16 unit outside a valid surrogate pair; <paramref name="map"/>
    /// returns the replacement or null to keep the character.
    /// </summary>
    private static string Translate(string text, Func<char, string?> map)
    {
        StringBuilder? sb = null;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                sb?.Append(c).Append(text[i + 1]);
                i++;
                continue;
            }
            var replacement = map(c);
            if (replacement is null)
            {
                sb?.Append(c);
                continue;
            }
            sb ??= new StringBuilder(text.Length).Append(text, 0, i);
            sb.Append(replacement);
        }
        return sb?.ToString() ?? text;
    }

    /// <summary>
    /// ftfy's character fixers before line breaks, in its order: C1 → Windows-1252 (which can yield a curly
    /// quote, straightened here too), ligatures, width, quotes; then a lone surrogate → U+FFFD. Null keeps it.
    /// </summary>
    private static string? CharacterFix(char c)
    {
        if (Windows1252.IsC1(c))
        {
            var mapped = Windows1252.FromC1(c);
            return Quote(mapped) is { } quote ? quote.ToString() : mapped == c ? null : mapped.ToString();
        }
        if (char.IsSurrogate(c))
            return "\uFFFD";
        if (Quote(c) is { } straight)
            return straight.ToString();
        return Ligature(c) ?? Width(c);
    }

    /// <summary>ftfy's <c>uncurl_quotes</c>: U+02BC, U+2018–U+201B → ', U+201C–U+201F → ".</summary>
    private static char? Quote(char c) => c switch
    {
        '\u02BC' or >= '\u2018' and <= '\u201B' => '\'',
        >= '\u201C' and <= '\u201F' => '"',
        _ => null,
    };

    /// <summary>ftfy's <c>LIGATURES</c> table.</summary>
    private static string? Ligature(char c) => c switch
    {
        'Ĳ' => "IJ", 'ĳ' => "ij", 'ŉ' => "ʼn",
        'Ǳ' => "DZ", 'ǲ' => "Dz", 'ǳ' => "dz", 'Ǆ' => "DŽ", 'ǅ' => "Dž", 'ǆ' => "dž",
        'Ǉ' => "LJ", 'ǈ' => "Lj", 'ǉ' => "lj", 'Ǌ' => "NJ", 'ǋ' => "Nj", 'ǌ' => "nj",
        'ﬀ' => "ff", 'ﬁ' => "fi", 'ﬂ' => "fl", 'ﬃ' => "ffi", 'ﬄ' => "ffl", 'ﬅ' => "ſt", 'ﬆ' => "st",
        _ => null,
    };

    /// <summary>ftfy's <c>WIDTH_MAP</c>: U+3000 → space; U+FF01–U+FFEF → their NFKC form when it differs.</summary>
    private static string? Width(char c)
    {
        if (c == '\u3000')
            return " ";
        if (c is < '\uFF01' or > '\uFFEF')
            return null;
        var s = c.ToString();
        var nfkc = s.Normalize(NormalizationForm.FormKC);
        return nfkc == s ? null : nfkc;
    }

    /// <summary>ftfy's <c>CONTROL_CHARS</c>: C0 controls but \t \n \f \r, DEL, U+206A–U+206F, BOM, U+FFF9–U+FFFC.</summary>
    private static bool IsRemovedControl(char c) =>
        c is <= '\u0008' or '\u000B' or >= '\u000E' and <= '\u001F' or '\u007F'
            or >= '\u206A' and <= '\u206F' or '\uFEFF' or >= '\uFFF9' and <= '\uFFFC';

    /// <summary>ftfy's <c>fix_line_breaks</c> (its U+0085 case never occurs: the C1 fix turned it into '…').</summary>
    private static string FixLineBreaks(string text) =>
        text.Replace("\r\n", "\n").Replace('\r', '\n').Replace('\u2028', '\n').Replace('\u2029', '\n');

    /// <summary>ftfy's <c>remove_terminal_escapes</c>: ESC '[' [0-9;]* [A-Za-z].</summary>
    private static string RemoveTerminalEscapes(string text)
    {
        var esc = text.IndexOf('\u001B');
        if (esc < 0)
            return text;
        var sb = new StringBuilder(text.Length);
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] == '\u001B' && i + 1 < text.Length && text[i + 1] == '[')
            {
                var j = i + 2;
                while (j < text.Length && (char.IsAsciiDigit(text[j]) || text[j] == ';'))
                    j++;
                if (j < text.Length && char.IsAsciiLetter(text[j]))
                {
                    i = j + 1;
                    continue;
                }
            }
            sb.Append(text[i]);
            i++;
        }
        return sb.ToString();
    }
}
