using System.Text;
using Microsoft.ML.Tokenizers;

namespace LocalDiffusion.Tokenizer;

/// <summary>
/// CLIP's text cleaning (openai <c>simple_tokenizer.py</c>): ftfy <c>fix_text</c>, <c>html.unescape</c> twice,
/// strip, whitespace runs → one space, Python <c>str.lower()</c>. Stateless, so safe to share between threads.
/// </summary>
public sealed class ClipNormalizer : Normalizer
{
    /// <summary>The one instance (the normalizer has no settings).</summary>
    public static ClipNormalizer Instance { get; } = new();

    private ClipNormalizer()
    {
    }

    /// <inheritdoc/>
    public override string Normalize(string original)
    {
        ArgumentNullException.ThrowIfNull(original);
        var text = TextFixer.Fix(original);
        text = HtmlUnescape.Python(HtmlUnescape.Python(text));
        return PythonText.Lower(CollapseWhitespace(text));
    }

    /// <inheritdoc/>
    public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());

    /// <summary>Python's <c>re.sub(r"\s+", " ", text.strip()).strip()</c>.</summary>
    private static string CollapseWhitespace(string text)
    {
        var sb = new StringBuilder(text.Length);
        var pendingSpace = false;
        foreach (var c in text)
        {
            if (PythonText.IsSpace(c))
            {
                pendingSpace = sb.Length > 0;
                continue;
            }
            if (pendingSpace)
                sb.Append(' ');
            pendingSpace = false;
            sb.Append(c);
        }
        return sb.ToString();
    }
}
