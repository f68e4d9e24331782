using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// Attention weights for the flow families' encoders (SD 3's CLIP-L, CLIP-G and T5; FLUX.1's T5): each prompt's row of
/// ids with its per-token weights, and A1111's "Original" emphasis applied to an encoder's states row by row — the same
/// rule as SD 1.x/XL (<see cref="PromptEncoder.ApplyWeights"/>): every token's state times its weight, then the row
/// rescaled so its mean is the unweighted row's. Each encoder's rows are weighted on their own, before SD 3 joins them,
/// so the mean restored is that encoder's; pooled outputs are never weighted (as A1111 and Forge).
/// </summary>
/// <remarks>
/// ComfyUI weights differently (comfy/sd1_clip.py, <c>ClipTokenWeightEncoder.encode_token_weights</c>, used for its T5
/// too): each weighted token's state is moved away from the empty prompt's state at that position,
/// z ← (z − z_empty)·w + z_empty, with no mean restored. This engine keeps A1111's rule for every family, as Forge does
/// for T5 (its T5 engine runs the "Original" emphasis over each 256-token T5 sequence), so one prompt means the same
/// emphasis on every model it runs on.
/// </remarks>
internal static class FlowEmphasis
{
    /// <summary>The CLIP rows of <paramref name="prompts"/>, back to back, and each row's weights (null: unweighted).</summary>
    public static (int[] Ids, float[]?[] Weights) ClipRows(ClipTokenizer tokenizer, IReadOnlyList<FlowPrompt> prompts, Embeddings.TriggerMatcher? embeddings)
    {
        var ids = new int[prompts.Count * tokenizer.MaxLength];
        var weights = new float[]?[prompts.Count];
        for (var r = 0; r < prompts.Count; r++)
        {
            var (row, w) = prompts[r].ClipRow(tokenizer, embeddings);
            row.CopyTo(ids, r * tokenizer.MaxLength);
            weights[r] = w;
        }
        return (ids, weights);
    }

    /// <summary>The T5 rows of <paramref name="prompts"/> (<paramref name="length"/> ids each) and each row's weights (null: unweighted).</summary>
    public static (int[] Ids, float[]?[] Weights) T5Rows(T5Tokenizer tokenizer, IReadOnlyList<FlowPrompt> prompts, int length)
    {
        var ids = new int[prompts.Count * length];
        var weights = new float[]?[prompts.Count];
        for (var r = 0; r < prompts.Count; r++)
        {
            var (row, w) = prompts[r].T5Row(tokenizer, length);
            row.CopyTo(ids, r * length);
            weights[r] = w;
        }
        return (ids, weights);
    }

    /// <summary>
    /// Weights <paramref name="states"/> [rows, length, width] in place: each row with weights gets the "Original"
    /// emphasis over its length·width values; rows without are left exactly as the encoder returned them.
    /// </summary>
    /// <exception cref="ArgumentException">A weighted row is no longer finite (ParamName: Prompt or NegativePrompt).</exception>
    public static void Apply(float[] states, int length, int width, float[]?[] weights, IReadOnlyList<FlowPrompt> prompts)
    {
        for (var r = 0; r < prompts.Count; r++)
        {
            if (weights[r] is not { } w) continue;
            var row = states.AsSpan(r * length * width, length * width);
            PromptEncoder.ApplyWeights(row, w, width);
            WeightedConditioning.RequireFinite(row, prompts[r].Text, prompts[r].Negative);
        }
    }
}
