using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Errors;

namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// Stage 1 of a generation: the prompts → the UNet's text conditioning, as AUTOMATIC1111 does it. Each prompt is read
/// for attention weights (<see cref="PromptAttention"/>), split into 75-token chunks (<see cref="PromptChunks"/>), and
/// every chunk is one text-encoder row; the chunks of a prompt are concatenated along the sequence axis when the
/// UNet's <c>encoder_hidden_states</c> takes any length (prompts with fewer chunks are padded with the empty prompt's
/// chunk, A1111's <c>pad_cond_uncond</c>), otherwise the prompt is cut at 75 tokens with a warning. Weighted chunks
/// have each token's embedding multiplied by its weight and the chunk's original mean restored (A1111's "Original"
/// emphasis); a chunk whose weights are all 1 is left exactly as the encoder returned it.
/// </summary>
internal sealed class PromptEncoder(ClipTokenizer tokenizer, ClipTextEncoder textEncoder, string textEncoderPath, bool dynamicSequence)
{
    private int ChunkLength => textEncoder.SequenceLength - 2;

    /// <summary>Whether prompts longer than one chunk are encoded whole (the UNet's sequence axis is dynamic).</summary>
    public bool ChunksLongPrompts => dynamicSequence;

    /// <summary>The textual-inversion names this encoder's prompts may hold (set once when the pipeline loads them); null: none.</summary>
    public Embeddings.TriggerMatcher? Embeddings { get; set; }

    /// <summary>The empty prompt's chunk (BOS, EOS, padding): what pads a prompt with fewer chunks than the other.</summary>
    public PromptChunk EmptyChunk { get; } =
        PromptChunks.Split([new WeightedText("", 1.0)], tokenizer.EncodeTokens, tokenizer.BosId, tokenizer.EosId, tokenizer.PadId, null, textEncoder.SequenceLength - 2)[0];

    /// <summary>Refuses a prompt whose attention syntax cannot be read, naming the request property.</summary>
    public static void Validate(string prompt, string property)
    {
        try
        {
            _ = PromptAttention.Parse(prompt);
        }
        catch (FormatException e)
        {
            throw new InvalidRequestException(property, null, null, called => $"{called}: {e.Message} (or set PromptWeighting = false to use the text as it is).", e);
        }
    }

    /// <summary>The chunks of one prompt, and how many of its tokens were dropped (only without chunking).</summary>
    public (List<PromptChunk> Chunks, int Dropped, bool IgnoredBreak) Tokenize(string prompt, bool weighting)
    {
        List<WeightedText> runs = weighting ? PromptAttention.Parse(prompt) : [new WeightedText(prompt, 1.0)];
        if (dynamicSequence)
            return (PromptChunks.Split(runs, tokenizer.EncodeTokens, tokenizer.BosId, tokenizer.EosId, tokenizer.PadId, tokenizer.CommaId, ChunkLength, Embeddings), 0, false);
        // A static 77: one chunk, the first 75 tokens, as the tokenizer alone would cut them.
        var flat = new List<WeightedText>(runs.Count);
        var ignoredBreak = false;
        foreach (var run in runs)
        {
            if (run.IsBreak) ignoredBreak = true;
            else flat.Add(run);
        }
        var chunks = PromptChunks.Split(flat, tokenizer.EncodeTokens, tokenizer.BosId, tokenizer.EosId, tokenizer.PadId, null, ChunkLength, Embeddings);
        var dropped = chunks.Skip(1).Sum(c => Array.IndexOf(c.Ids, tokenizer.EosId, 1) - 1);
        return ([chunks[0]], dropped, ignoredBreak);
    }

    /// <summary>
    /// Encodes <paramref name="prompts"/> (diffusers' order with classifier-free guidance: negative, then prompt) into
    /// <paramref name="imagesPerPrompt"/> rows each. Truncation is reported in <paramref name="warnings"/>.
    /// </summary>
    /// <exception cref="GenerationNumericsException">The text encoder returned NaN or infinity.</exception>
    /// <exception cref="ArgumentException">A prompt's attention weights made its conditioning NaN or infinite (ParamName: Prompt or NegativePrompt).</exception>
    public UNetInputs Encode(IReadOnlyList<string> prompts, int imagesPerPrompt, bool weighting, List<string> warnings,
        TimingRecorder timings, RunOptions runOptions)
    {
        var seq = textEncoder.SequenceLength;
        var perPrompt = new List<PromptChunk>[prompts.Count];
        for (var p = 0; p < prompts.Count; p++)
        {
            var name = p == prompts.Count - 1 ? "prompt" : "negative prompt";
            var (chunks, dropped, ignoredBreak) = Tokenize(prompts[p], weighting);
            if (dropped > 0)
                warnings.Add($"The {name} is longer than {seq - 2} tokens: the last {dropped} token(s) were dropped.");
            if (ignoredBreak)
                warnings.Add($"The {name}'s BREAK was ignored: this UNet takes exactly {seq} tokens, so a prompt cannot have more than one chunk.");
            perPrompt[p] = chunks;
        }
        var count = perPrompt.Max(c => c.Count);
        var ids = new int[prompts.Count * count * seq];
        for (var p = 0; p < prompts.Count; p++)
            for (var c = 0; c < count; c++)
                (c < perPrompt[p].Count ? perPrompt[p][c] : EmptyChunk).Ids.CopyTo(ids, (p * count + c) * seq);
        timings.TokenizeDone();

        var (encoded, hidden) = textEncoder.Encode(ids, prompts.Count * count, runOptions);
        if (!TensorPrimitives.IsFiniteAll<float>(encoded))
            throw new GenerationNumericsException(NumericsStage.TextEncoder, null,
                $"the text encoder ({textEncoderPath}) returned NaN/infinity for the prompt: an fp16 encoder overflowing, or a broken export.");
        for (var p = 0; p < prompts.Count; p++)
            for (var c = 0; c < perPrompt[p].Count; c++)
                if (perPrompt[p][c].IsWeighted)
                {
                    var chunk = encoded.AsSpan((p * count + c) * seq * hidden, seq * hidden);
                    ApplyWeights(chunk, perPrompt[p][c].Weights, hidden);
                    WeightedConditioning.RequireFinite(chunk, prompts[p], negative: p < prompts.Count - 1);
                }

        // Each prompt's chunks are consecutive rows, so its [count·seq, hidden] conditioning is one block.
        var block = count * seq * hidden;
        var rows = new float[prompts.Count * imagesPerPrompt * block];
        for (var p = 0; p < prompts.Count; p++)
            for (var i = 0; i < imagesPerPrompt; i++)
                encoded.AsSpan(p * block, block).CopyTo(rows.AsSpan((p * imagesPerPrompt + i) * block));
        return new UNetInputs { EncoderHiddenStates = rows, Batch = prompts.Count * imagesPerPrompt, SequenceLength = count * seq, HiddenSize = hidden };
    }

    /// <summary>
    /// A1111's <c>EmphasisOriginal.after_transformers</c>: z ← z·w (per token), then z ← z·(mean before / mean after).
    /// </summary>
    internal static void ApplyWeights(Span<float> chunk, ReadOnlySpan<float> weights, int hidden)
    {
        var before = Mean(chunk);
        for (var t = 0; t < weights.Length; t++)
            if (weights[t] != 1f)
                TensorPrimitives.Multiply(chunk.Slice(t * hidden, hidden), weights[t], chunk.Slice(t * hidden, hidden));
        var after = Mean(chunk);
        // A chunk averaging exactly 0 after weighting has no mean to restore (A1111 would divide by zero).
        if (after != 0 && double.IsFinite(before / after)) TensorPrimitives.Multiply(chunk, (float)(before / after), chunk);
    }

    // Accumulated in double: torch's float32 mean sums pairwise, so both are within float rounding of the exact mean.
    private static double Mean(ReadOnlySpan<float> values)
    {
        var sum = 0.0;
        foreach (var v in values) sum += v;
        return sum / values.Length;
    }
}
