using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Server.OpenAi;

/// <summary>
/// OpenAI's <c>revised_prompt</c> is "the prompt as used". Here that is the prompt cut to what the text encoder sees:
/// the longest run of whole words that fits in its 75 tokens (CLIP tokenizes word by word, so a prefix that ends at a
/// space tokenizes to a prefix of the tokens).
/// </summary>
internal static class RevisedPrompt
{
    public static string Of(ClipTokenizer? tokenizer, string prompt)
    {
        if (tokenizer is null || tokenizer.Encode(prompt).TruncatedTokens == 0) return prompt;
        var cuts = new List<int>();
        for (var i = 1; i < prompt.Length; i++)
            if (char.IsWhiteSpace(prompt[i]) && !char.IsWhiteSpace(prompt[i - 1])) cuts.Add(i);
        // Binary search for the last word boundary whose prefix still fits.
        int lo = 0, hi = cuts.Count - 1, best = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) / 2;
            if (tokenizer.Encode(prompt[..cuts[mid]]).TruncatedTokens == 0)
            {
                best = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return best < 0 ? "" : prompt[..cuts[best]];
    }
}
