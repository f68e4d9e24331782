using LocalDiffusion.Denoising;

namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// The last prompts' encoded conditioning, least recently used first out: a server sees the same prompt many times
/// (variations, seeds, batches of one), and the text encoders are a fixed cost of every generation. Keyed by everything
/// the encoding reads — both prompts, the image count, the weighting switch, SDXL's time ids and the LoRA set (a LoRA
/// can change the text encoders) — so a hit is exactly what encoding again would give; callers get their own copies of
/// the arrays and the warnings encoding gave, so pictures are bit-identical with it on or off.
/// </summary>
internal sealed class ConditioningCache(int capacity)
{
    private readonly Lock _gate = new();
    private readonly LinkedList<(string Key, UNetInputs Inputs, string[] Warnings)> _order = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, UNetInputs Inputs, string[] Warnings)>> _entries = new(StringComparer.Ordinal);

    /// <summary>Lookups answered from the cache.</summary>
    public long Hits { get; private set; }

    /// <summary>The key of an encoding; parts are joined with a separator no prompt can hold unescaped.</summary>
    public static string Key(IReadOnlyList<string> prompts, int images, bool weighting, float[]? timeIds, string loras) =>
        string.Join('\u0001', [.. prompts, images.ToString(System.Globalization.CultureInfo.InvariantCulture), weighting ? "w" : "p",
            timeIds is null ? "" : string.Join(',', timeIds.Select(t => BitConverter.SingleToInt32Bits(t))), loras]);

    /// <summary>The cached encoding of <paramref name="key"/>, or the result of <paramref name="encode"/> stored under it.</summary>
    public UNetInputs GetOrEncode(string key, List<string> warnings, Func<List<string>, UNetInputs> encode)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                Hits++;
                warnings.AddRange(node.Value.Warnings);
                return Copy(node.Value.Inputs);
            }
        }
        var own = new List<string>();
        var inputs = encode(own);
        warnings.AddRange(own);
        lock (_gate)
        {
            if (!_entries.ContainsKey(key))
            {
                _entries[key] = _order.AddFirst((key, Copy(inputs), [.. own]));
                if (_entries.Count > capacity)
                {
                    _entries.Remove(_order.Last!.Value.Key);
                    _order.RemoveLast();
                }
            }
        }
        return inputs;
    }

    private static UNetInputs Copy(UNetInputs i) => i with
    {
        EncoderHiddenStates = (float[])i.EncoderHiddenStates.Clone(),
        TextEmbeds = (float[]?)i.TextEmbeds?.Clone(),
        TimeIds = (float[]?)i.TimeIds?.Clone(),
        TimestepCond = (float[]?)i.TimestepCond?.Clone(),
    };
}
