using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// Reads AUTOMATIC1111's infotext (a PNG's <c>parameters</c> text) into the fields its <c>parse_generation_parameters</c>
/// gives: the prompt lines, the lines from <c>Negative prompt:</c> on, and the last line's <c>Key: value</c> pairs
/// (values may be JSON-quoted to hold commas; <c>W</c>x<c>H</c> values split into <c>Key-1</c> and <c>Key-2</c>).
/// Unlike A1111, numbers come back as numbers, and no defaults are filled in for keys the text lacks.
/// </summary>
internal static partial class InfotextParser
{
    // A key starts with a word character and has two or more characters; a value is a JSON-style quoted string or runs to the next comma.
    // Matched without backtracking, in time linear in the line: a backtracking engine retries every start of a long line
    // with no colon (quadratic; a minutes-long request for an 8 MiB zTXt chunk).
    private static readonly Regex PairPattern = new("""\s*(?<key>\w[\w \-/]+):\s*(?<value>"(?:\\.|[^\\"])+"|[^,]*)(?:,|$)""", RegexOptions.NonBacktracking);

    private static Regex Pair() => PairPattern;

    [GeneratedRegex("""^(\d+)x(\d+)$""")]
    private static partial Regex ImageSize();

    [GeneratedRegex("""^-?\d+(\.\d+)?$""")]
    private static partial Regex Number();

    private const string NegativePrefix = "Negative prompt:";

    /// <summary>Prompt, Negative prompt, then each setting of the last line in its order.</summary>
    public static OrderedDictionary<string, object> Parse(string infotext)
    {
        var lines = infotext.Replace("\r\n", "\n", StringComparison.Ordinal).Trim().Split('\n').ToList();
        var last = lines[^1];
        // A last line with fewer than three settings is part of the prompt, as in A1111.
        if (Pair().Matches(last).Count >= 3) lines.RemoveAt(lines.Count - 1);
        else last = "";

        string prompt = "", negative = "";
        var inNegative = false;
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.StartsWith(NegativePrefix, StringComparison.Ordinal))
            {
                inNegative = true;
                line = line[NegativePrefix.Length..].Trim();
            }
            if (inNegative) negative = Append(negative, line);
            else prompt = Append(prompt, line);
        }
        var result = new OrderedDictionary<string, object>(StringComparer.Ordinal)
        {
            ["Prompt"] = prompt,
            ["Negative prompt"] = negative,
        };
        foreach (Match pair in Pair().Matches(last))
        {
            var key = pair.Groups["key"].Value;
            var value = Unquote(pair.Groups["value"].Value);
            if (ImageSize().Match(value) is { Success: true } size)
            {
                result[key + "-1"] = Typed(size.Groups[1].Value);
                result[key + "-2"] = Typed(size.Groups[2].Value);
            }
            else
            {
                result[key] = Typed(value);
            }
        }
        return result;
    }

    // Lines join with newlines, but nothing is joined to an empty start (so leading blank lines vanish), as in A1111.
    private static string Append(string text, string line) => text.Length == 0 ? line : text + "\n" + line;

    // A quoted value is a JSON string (A1111 writes them with json.dumps); one that does not parse stays as written.
    private static string Unquote(string value)
    {
        if (value.Length < 2 || value[0] != '"' || value[^1] != '"') return value;
        try
        {
            // An escaped lone surrogate ("\ud800") would make a string no JSON answer can carry: kept as written.
            var text = JsonSerializer.Deserialize<string>(value);
            return text is not null && IsWholeUtf16(text) ? text : value;
        }
        catch (JsonException)
        {
            return value;
        }
    }

    // Every surrogate in a pair.
    private static bool IsWholeUtf16(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(text[i])) return false;
        }
        return true;
    }

    private static object Typed(string value)
    {
        if (!Number().IsMatch(value)) return value;
        if (long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var whole)) return whole;
        // Hundreds of digits parse to infinity, which JSON cannot carry: such a number stays text.
        return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) && double.IsFinite(real) ? real : value;
    }
}
