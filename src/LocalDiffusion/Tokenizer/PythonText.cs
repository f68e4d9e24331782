using System.Buffers;
using System.Globalization;
using System.Text;

namespace LocalDiffusion.Tokenizer;

/// <summary>Python 3 <c>str</c> semantics that .NET does not share: <c>isspace</c> and <c>lower</c>.</summary>
internal static class PythonText
{
    private const int CapitalSigma = 0x03A3;

    /// <summary>
    /// Python's <c>str.upper()</c> for the text HTML entities decode to: simple upper-casing plus the
    /// one-to-many SpecialCasing mappings those values reach (ß → SS, the ﬀ-style ligatures, ŉ → ʼN).
    /// </summary>
    public static string UpperOfEntityValue(string text) => text switch
    {
        "ß" => "SS",
        "ﬀ" => "FF",
        "ﬁ" => "FI",
        "ﬂ" => "FL",
        "ﬃ" => "FFI",
        "ﬄ" => "FFL",
        "ŉ" => "ʼN",
        _ => text.ToUpperInvariant(),
    };

    /// <summary>Python's <c>str.isspace</c> for one code point: Unicode White_Space plus U+001C–U+001F.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001C' and <= '\u001F';

    /// <summary>
    /// Python's <c>str.lower()</c>: full lowercase mapping per code point (U+0130 İ → "i̇", two characters) and
    /// the Final_Sigma rule (Σ → ς at the end of a word), which <c>ToLowerInvariant</c> does not apply.
    /// </summary>
    public static string Lower(string text)
    {
        var sb = new StringBuilder(text.Length + 4);
        var index = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (rune.Value == 0x0130)
                sb.Append("i\u0307");
            else if (rune.Value == CapitalSigma)
                sb.Append(IsFinalSigma(text, index) ? 'ς' : 'σ');
            else
                AppendRune(sb, Rune.ToLowerInvariant(rune));
            index += rune.Utf16SequenceLength;
        }
        return sb.ToString();
    }

    private static void AppendRune(StringBuilder sb, Rune rune)
    {
        Span<char> buffer = stackalloc char[2];
        sb.Append(buffer[..rune.EncodeToUtf16(buffer)]);
    }

    /// <summary>Unicode's Final_Sigma condition as CPython checks it: a cased letter before (skipping
    /// case-ignorables) and none after.</summary>
    private static bool IsFinalSigma(string text, int sigmaIndex)
    {
        var before = sigmaIndex;
        Rune rune = default;
        var found = false;
        while (before > 0 && Rune.DecodeLastFromUtf16(text.AsSpan(0, before), out rune, out var used) == OperationStatus.Done)
        {
            before -= used;
            if (!IsCaseIgnorable(rune))
            {
                found = true;
                break;
            }
        }
        if (!found || !IsCased(rune))
            return false;
        var after = sigmaIndex + 1;
        while (after < text.Length && Rune.DecodeFromUtf16(text.AsSpan(after), out rune, out var used) == OperationStatus.Done)
        {
            after += used;
            if (!IsCaseIgnorable(rune))
                return !IsCased(rune);
        }
        return true;
    }

    /// <summary>Cased: Lu, Ll, Lt, or any other code point that has a case mapping (e.g. circled letters).</summary>
    private static bool IsCased(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter => true,
        _ => Rune.ToLowerInvariant(rune) != rune || Rune.ToUpperInvariant(rune) != rune,
    };

    /// <summary>Case_Ignorable: Mn, Me, Cf, Lm, Sk, and the Word_Break MidLetter/MidNumLet/Single_Quote marks.</summary>
    private static bool IsCaseIgnorable(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format
            or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol => true,
        _ => rune.Value is 0x27 or 0x2E or 0x3A or 0xB7 or 0x387 or 0x55F or 0x5F4 or 0x2018 or 0x2019 or 0x2024
            or 0x2027 or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A,
    };
}
