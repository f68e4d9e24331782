using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace LocalDiffusion.Tokenizer;

/// <summary>
/// CLIP's word split, the regex
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>
/// (ignore case) scanned per code point: .NET's <c>Regex</c> classifies per UTF-16 unit and would call letters and
/// digits outside the BMP punctuation. Expects normalized (lower-case) text. Stateless and thread-safe.
/// </summary>
public sealed class ClipPreTokenizer : PreTokenizer
{
    private static readonly string[] SpecialTokens = ["<|startoftext|>", "<|endoftext|>"];

    /// <summary>The one instance (the split has no settings).</summary>
    public static ClipPreTokenizer Instance { get; } = new();

    private ClipPreTokenizer()
    {
    }

    /// <inheritdoc/>
    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Split(text);
    }

    /// <inheritdoc/>
    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text);

    private static List<(int Offset, int Length)> Split(ReadOnlySpan<char> text)
    {
        var tokens = new List<(int Offset, int Length)>();
        var i = 0;
        while (i < text.Length)
        {
            var kind = Classify(text[i..], out var width);
            var rest = text[i..];
            int length;
            if (StartsWithSpecial(rest) is var special and > 0)
                length = special;
            else if (ContractionLength(rest) is var contraction and > 0)
                length = contraction;
            else if (kind == CharKind.Space)
            {
                i += width;
                continue;
            }
            else if (kind == CharKind.Number)
                length = width;
            else
                length = RunLength(rest, kind);
            tokens.Add((i, length));
            i += length;
        }
        return tokens;
    }

    private static int StartsWithSpecial(ReadOnlySpan<char> text)
    {
        foreach (var special in SpecialTokens)
            if (text.StartsWith(special, StringComparison.OrdinalIgnoreCase))
                return special.Length;
        return 0;
    }

    /// <summary>'s 't 're 've 'm 'll 'd, case-insensitive (Python's regex also folds ſ to s).</summary>
    private static int ContractionLength(ReadOnlySpan<char> text)
    {
        if (text.Length < 2 || text[0] != '\'')
            return 0;
        var first = char.ToLowerInvariant(text[1]);
        if (first is 's' or 't' or 'm' or 'd' or 'ſ')
            return 2;
        if (text.Length < 3)
            return 0;
        var second = char.ToLowerInvariant(text[2]);
        return (first, second) is ('r', 'e') or ('v', 'e') or ('l', 'l') ? 3 : 0;
    }

    /// <summary>Length of the run of letters (kind Letter) or of other non-space, non-number code points.</summary>
    private static int RunLength(ReadOnlySpan<char> text, CharKind kind)
    {
        var length = 0;
        while (length < text.Length && Classify(text[length..], out var width) == kind)
            length += width;
        return length;
    }

    private enum CharKind { Letter, Number, Space, Other }

    private static CharKind Classify(ReadOnlySpan<char> text, out int width)
    {
        Rune.DecodeFromUtf16(text, out var rune, out width);
        if (Rune.IsWhiteSpace(rune))
            return CharKind.Space;
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharKind.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharKind.Number,
            _ => CharKind.Other,
        };
    }
}
