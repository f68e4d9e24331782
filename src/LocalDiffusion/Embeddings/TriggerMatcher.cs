using LocalDiffusion.Errors;
using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Embeddings;

/// <summary>One trigger a prompt can hold: its name's tokens and the ids that replace them (or why it cannot be used).</summary>
internal sealed record Trigger(string Name, int[] Tokens, int[] Ids, string? Refusal);

/// <summary>
/// Finds embedding names among a prompt's tokens as AUTOMATIC1111's <c>find_embedding_at_position</c> does: at each
/// position, the longest name whose token sequence starts there. Immutable; shared by every generation.
/// </summary>
internal sealed class TriggerMatcher
{
    private readonly Dictionary<int, Trigger[]> _byFirstToken;

    public TriggerMatcher(IEnumerable<Trigger> triggers) =>
        _byFirstToken = triggers.Where(t => t.Tokens.Length > 0).GroupBy(t => t.Tokens[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Tokens.Length).ToArray());

    /// <summary>The trigger whose tokens start at <paramref name="tokens"/>[<paramref name="position"/>], or null.</summary>
    /// <exception cref="ArgumentException">The prompt names an embedding that was refused for this model (the message says why).</exception>
    public Trigger? Match(IReadOnlyList<int> tokens, int position)
    {
        if (!_byFirstToken.TryGetValue(tokens[position], out var candidates)) return null;
        foreach (var trigger in candidates)
        {
            if (position + trigger.Tokens.Length > tokens.Count) continue;
            var same = true;
            for (var k = 1; k < trigger.Tokens.Length && same; k++) same = tokens[position + k] == trigger.Tokens[k];
            if (!same) continue;
            if (trigger.Refusal is { } why)
                throw new InvalidRequestException("Prompt", trigger.Name, null, $"the prompt uses the embedding \"{trigger.Name}\", which cannot be used with this model: {why}");
            return trigger;
        }
        return null;
    }

    /// <summary><paramref name="text"/>'s ids as <see cref="Encode(ClipTokenizer, string, out int)"/> gives them, the count not wanted.</summary>
    public int[] Encode(ClipTokenizer tokenizer, string text) => Encode(tokenizer, text, out _);

    /// <summary>
    /// <paramref name="text"/> as <see cref="ClipTokenizer.Encode"/> gives it (BOS, at most MaxLength − 2 tokens, EOS,
    /// padding: diffusers' truncation, as the flow pipelines tokenize), each embedding name replaced by its vectors' ids.
    /// </summary>
    /// <param name="tokenizer">The encoder's tokenizer.</param>
    /// <param name="text">The prompt.</param>
    /// <param name="count">The prompt's tokens before the cut, for the truncation warning: each embedding in the window counts
    /// its vectors; past the window the text's tokens count as they are (names there are not matched, so a refused name the
    /// window cut stays harmless, as before).</param>
    /// <exception cref="ArgumentException">The text names an embedding that was refused for this model.</exception>
    public int[] Encode(ClipTokenizer tokenizer, string text, out int count)
    {
        var tokens = tokenizer.EncodeTokens(text);
        var ids = new int[tokenizer.MaxLength];
        ids[0] = tokenizer.BosId;
        var kept = 0;
        var i = 0;
        var cut = 0;
        while (i < tokens.Count && kept < ids.Length - 2)
        {
            if (Match(tokens, i) is { } trigger)
            {
                // The vectors past the last place are cut, as diffusers cuts a long prompt's tokens.
                for (var k = 0; k < trigger.Ids.Length; k++)
                    if (kept < ids.Length - 2) ids[1 + kept++] = trigger.Ids[k];
                    else cut++;
                i += trigger.Tokens.Length;
            }
            else ids[1 + kept++] = tokens[i++];
        }
        count = kept + cut + (tokens.Count - i);
        ids[kept + 1] = tokenizer.EosId;
        ids.AsSpan(kept + 2).Fill(tokenizer.PadId);
        return ids;
    }
}
