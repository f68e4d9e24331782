using LocalDiffusion.Errors;

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
}
