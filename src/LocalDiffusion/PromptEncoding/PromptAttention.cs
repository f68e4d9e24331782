using System.Globalization;
using System.Text.RegularExpressions;

namespace LocalDiffusion.PromptEncoding;

/// <summary>One run of prompt text with its attention weight; <see cref="IsBreak"/> marks a <c>BREAK</c>.</summary>
internal readonly record struct WeightedText(string Text, double Weight)
{
    /// <summary>A <c>BREAK</c>: the current 75-token chunk ends here (A1111 stores it as ("BREAK", −1)).</summary>
    public bool IsBreak => Weight == -1 && Text == "BREAK";
}

/// <summary>
/// AUTOMATIC1111's attention syntax, a port of <c>parse_prompt_attention</c> in its modules/prompt_parser.py:
/// <c>(text)</c> multiplies the weight by 1.1, <c>[text]</c> divides it by 1.1, <c>(text:1.3)</c> multiplies it by 1.3,
/// <c>\(</c> <c>\)</c> <c>\[</c> <c>\]</c> <c>\\</c> are literal, unclosed brackets apply to the end, and <c>BREAK</c> (upper case, a
/// word of its own) starts a new chunk. Runs of equal weight are merged.
/// Two limits A1111 does not have: brackets nest at most <see cref="MaxNestingDepth"/> deep, and every weight, as
/// written and as multiplied out, must be a finite float32 (the text conditioning is float32): a weight of 1e400 or
/// 10,000 nested <c>(</c> would otherwise make the conditioning infinite and the UNet return NaN.
/// </summary>
internal static partial class PromptAttention
{
    private const double RoundMultiplier = 1.1;
    private const double SquareMultiplier = 1 / 1.1;

    /// <summary>
    /// The deepest nesting of <c>(</c> and <c>[</c> accepted. Real prompts nest a few levels (1.1⁵ ≈ 1.6); 100 levels of
    /// <c>(</c> already weigh 1.1¹⁰⁰ ≈ 13,781, and a thousand-level prompt is a paste error, not emphasis.
    /// </summary>
    public const int MaxNestingDepth = 100;

    // How much of a long token or weight an error message quotes.
    private const int QuotedLength = 40;

    // The same alternatives, in the same order, as A1111's re_attention.
    [GeneratedRegex(@"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")]
    private static partial Regex Attention();

    [GeneratedRegex(@"\s*\bBREAK\b\s*", RegexOptions.Singleline)]
    private static partial Regex Break();

    /// <summary>Parses <paramref name="text"/> into weighted runs (never empty: "" gives one run of weight 1).</summary>
    /// <exception cref="FormatException">
    /// A <c>(text:weight)</c> weight is not a number (e.g. <c>1.2.3</c>) or not a finite float32, a run's multiplied-out
    /// weight is not a finite float32, or brackets nest deeper than <see cref="MaxNestingDepth"/>.
    /// </exception>
    public static List<WeightedText> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var runs = new List<(string Text, double Weight)>();
        var round = new List<int>();
        var square = new List<int>();

        void Multiply(int start, double multiplier)
        {
            for (var p = start; p < runs.Count; p++) runs[p] = (runs[p].Text, runs[p].Weight * multiplier);
        }

        foreach (Match m in Attention().Matches(text))
        {
            var token = m.Value;
            var weight = m.Groups[1];
            if (token.StartsWith('\\'))
            {
                runs.Add((token[1..], 1.0));
            }
            else if (token is "(" or "[")
            {
                if (round.Count + square.Count >= MaxNestingDepth)
                    throw new FormatException($"the brackets nest more than {MaxNestingDepth} levels deep (the \"{token}\" at character {m.Index + 1}); " +
                        $"at most {MaxNestingDepth} are accepted, e.g. ((word)) or (word:1.5).");
                (token == "(" ? round : square).Add(runs.Count);
            }
            else if (weight.Success && round.Count > 0)
            {
                if (!double.TryParse(weight.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var w))
                    throw new FormatException($"the attention weight \"{Quote(weight.Value)}\" in \"{Quote(token)}\" is not a number; write e.g. (word:1.3).");
                if (!float.IsFinite((float)w))
                    throw new FormatException($"the attention weight \"{Quote(weight.Value)}\" (at character {weight.Index + 1}) is not a finite number " +
                        $"(float32 holds at most {float.MaxValue.ToString(CultureInfo.InvariantCulture)}); write e.g. (word:1.3).");
                Multiply(Pop(round), w);
            }
            else if (token == ")" && round.Count > 0)
            {
                Multiply(Pop(round), RoundMultiplier);
            }
            else if (token == "]" && square.Count > 0)
            {
                Multiply(Pop(square), SquareMultiplier);
            }
            else
            {
                var parts = Break().Split(token);
                for (var i = 0; i < parts.Length; i++)
                {
                    if (i > 0) runs.Add(("BREAK", -1));
                    runs.Add((parts[i], 1.0));
                }
            }
        }
        foreach (var start in round) Multiply(start, RoundMultiplier);
        foreach (var start in square) Multiply(start, SquareMultiplier);
        if (runs.Count == 0) runs.Add(("", 1.0));
        // Finite factors can multiply out to infinity, e.g. (((word:1e30):1e30)).
        foreach (var (t, w) in runs)
            if (!float.IsFinite((float)w))
                throw new FormatException($"the attention weights around \"{Quote(t)}\" multiply out to {w.ToString("G4", CultureInfo.InvariantCulture)}, " +
                    $"which is not a finite float32; use weights of a usual size, e.g. (word:1.3).");

        var merged = new List<WeightedText>(runs.Count);
        foreach (var (t, w) in runs)
        {
            if (merged.Count > 0 && merged[^1].Weight == w) merged[^1] = merged[^1] with { Text = merged[^1].Text + t };
            else merged.Add(new WeightedText(t, w));
        }
        return merged;
    }

    /// <summary>Text as an error message quotes it: at most <see cref="QuotedLength"/> characters, with the full length when cut.</summary>
    internal static string Quote(string text) =>
        text.Length <= QuotedLength ? text : $"{text[..QuotedLength]}… ({text.Length.ToString(CultureInfo.InvariantCulture)} characters)";

    private static int Pop(List<int> stack)
    {
        var top = stack[^1];
        stack.RemoveAt(stack.Count - 1);
        return top;
    }
}
