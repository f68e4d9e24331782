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
/// </summary>
internal static partial class PromptAttention
{
    private const double RoundMultiplier = 1.1;
    private const double SquareMultiplier = 1 / 1.1;

    // The same alternatives, in the same order, as A1111's re_attention.
    [GeneratedRegex(@"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")]
    private static partial Regex Attention();

    [GeneratedRegex(@"\s*\bBREAK\b\s*", RegexOptions.Singleline)]
    private static partial Regex Break();

    /// <summary>Parses <paramref name="text"/> into weighted runs (never empty: "" gives one run of weight 1).</summary>
    /// <exception cref="FormatException">A <c>(text:weight)</c> weight is not a number (e.g. <c>1.2.3</c>).</exception>
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
            else if (token == "(")
            {
                round.Add(runs.Count);
            }
            else if (token == "[")
            {
                square.Add(runs.Count);
            }
            else if (weight.Success && round.Count > 0)
            {
                if (!double.TryParse(weight.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var w))
                    throw new FormatException($"the attention weight \"{weight.Value}\" in \"{token}\" is not a number; write e.g. (word:1.3).");
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

        var merged = new List<WeightedText>(runs.Count);
        foreach (var (t, w) in runs)
        {
            if (merged.Count > 0 && merged[^1].Weight == w) merged[^1] = merged[^1] with { Text = merged[^1].Text + t };
            else merged.Add(new WeightedText(t, w));
        }
        return merged;
    }

    private static int Pop(List<int> stack)
    {
        var top = stack[^1];
        stack.RemoveAt(stack.Count - 1);
        return top;
    }
}
