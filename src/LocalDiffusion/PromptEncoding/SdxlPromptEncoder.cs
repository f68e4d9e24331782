using LocalDiffusion.Errors;
using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// Stage 1 for SDXL base, as diffusers' <c>StableDiffusionXLPipeline.encode_prompt</c> does it for plain prompts and
/// AUTOMATIC1111 (its SDXL conditioner, whose two text embedders each run modules/sd_hijack_clip.py's chunking and
/// emphasis) does it for weighted and long ones. Each prompt is read for attention weights and split into 75-token
/// chunks by each tokenizer (the same chunks: SDXL's two tokenizers share one vocabulary and differ only in padding);
/// every chunk is one row of each text encoder; a weighted chunk has each encoder's penultimate hidden state multiplied
/// token by token and that encoder's chunk mean restored (A1111's "Original" emphasis, applied per embedder); the
/// two states are concatenated along the feature axis (1280 + 768 = 2048 for SDXL) and the chunks along the sequence
/// axis when the UNet's <c>encoder_hidden_states</c> takes any length (otherwise the prompt is cut at 75 tokens with a
/// warning, as before). <c>text_embeds</c> is encoder 2's pooled projection of the prompt's first chunk, unweighted
/// (A1111's <c>zs[0].pooled</c>). Prompts with fewer chunks than the other half of the CFG batch are padded with the
/// encoded empty prompt's chunk (A1111's <c>pad_cond_uncond</c>). With <c>force_zeros_for_empty_prompt</c> an empty
/// negative prompt conditions on zeros (embeddings and pooled; padding chunks beyond the first are the empty prompt's,
/// as A1111 pads it). A plain prompt of at most 75 tokens gives exactly diffusers' ids and embeddings.
/// The refiner (no encoder 1: <paramref name="tokenizer1"/> and <paramref name="encoder1"/> null) conditions on encoder
/// 2's penultimate state alone, chunked and weighted the same way.
/// </summary>
internal sealed class SdxlPromptEncoder(ClipTokenizer? tokenizer1, ClipTextEncoder? encoder1, ClipTokenizer tokenizer2, ClipTextEncoder encoder2,
    string encoder2Path, bool forceZerosForEmptyPrompt, bool dynamicSequence)
{
    // Chunking per encoder (its tokenizer's BOS/EOS/pad/comma ids), reusing SD 1.x's rules.
    private readonly PromptEncoder? _chunker1 = tokenizer1 is null || encoder1 is null ? null : new PromptEncoder(tokenizer1, encoder1, "text_encoder", dynamicSequence);
    private readonly PromptEncoder _chunker2 = new(tokenizer2, encoder2, encoder2Path, dynamicSequence);

    /// <summary>The chunker of encoder 1 (null for the refiner) and of encoder 2, for textual-inversion names.</summary>
    public (PromptEncoder? First, PromptEncoder Second) Chunkers => (_chunker1, _chunker2);

    /// <summary>Whether this is the refiner's encoder (text_encoder_2 alone, 5 time ids with aesthetic scores).</summary>
    public bool Refiner => encoder1 is null;

    /// <summary>The number of time ids the UNet takes: 6 for SDXL base, 5 for the refiner.</summary>
    public int TimeIdCount => Refiner ? 5 : 6;

    /// <summary>Whether prompts longer than one chunk are encoded whole (the UNet's sequence axis is dynamic).</summary>
    public bool ChunksLongPrompts => dynamicSequence;

    /// <summary>
    /// The chunks of one prompt for each encoder (<c>First</c> empty for the refiner), both lists of equal length, and
    /// the tokens dropped without chunking.
    /// </summary>
    public (List<PromptChunk> First, List<PromptChunk> Second, int Dropped, bool IgnoredBreak) Tokenize(string prompt, bool weighting)
    {
        var (second, dropped2, ignored) = _chunker2.Tokenize(prompt, weighting);
        if (_chunker1 is null) return ([], second, dropped2, ignored);
        var (first, dropped1, _) = _chunker1.Tokenize(prompt, weighting);
        // Identical vocabularies chunk identically; should two tokenizers ever disagree, the shorter list is padded
        // with its encoder's empty chunk rather than failing (A1111 would fail to concatenate them).
        while (first.Count < second.Count) first.Add(_chunker1.EmptyChunk);
        while (second.Count < first.Count) second.Add(_chunker2.EmptyChunk);
        return (first, second, Math.Max(dropped1, dropped2), ignored);
    }

    /// <summary>
    /// Encodes <paramref name="prompts"/> (with classifier-free guidance: negative, then prompt) into
    /// <paramref name="imagesPerPrompt"/> rows each; <paramref name="timeIds"/> gives each prompt's
    /// <see cref="TimeIdCount"/> time ids (in the same order).
    /// </summary>
    /// <exception cref="GenerationNumericsException">A text encoder returned NaN or infinity.</exception>
    /// <exception cref="ArgumentException">A prompt's attention weights made its conditioning NaN or infinite (ParamName: Prompt or NegativePrompt).</exception>
    public UNetInputs Encode(IReadOnlyList<string> prompts, int imagesPerPrompt, bool weighting, IReadOnlyList<float[]> timeIds,
        List<string> warnings, TimingRecorder timings, RunOptions runOptions)
    {
        var seq = encoder2.SequenceLength;
        var perPrompt = new (List<PromptChunk> First, List<PromptChunk> Second)?[prompts.Count];
        for (var p = 0; p < prompts.Count; p++)
        {
            var negative = p < prompts.Count - 1;
            // An empty negative prompt under force_zeros_for_empty_prompt is not encoded: one chunk of zeros.
            if (negative && forceZerosForEmptyPrompt && prompts[p].Length == 0) continue;
            var name = negative ? "negative prompt" : "prompt";
            var (first, second, dropped, ignoredBreak) = Tokenize(prompts[p], weighting);
            if (dropped > 0)
                warnings.Add($"The {name} is longer than {seq - 2} tokens: the last {dropped} token(s) were dropped.");
            if (ignoredBreak)
                warnings.Add($"The {name}'s BREAK was ignored: this UNet takes exactly {seq} tokens, so a prompt cannot have more than one chunk.");
            perPrompt[p] = (first, second);
        }
        var count = perPrompt.Max(c => c?.Second.Count ?? 1);

        // The encoder rows: each prompt's chunks, then (once, if needed) the empty prompt's chunk that pads the shorter
        // prompt. source[p, c] is the row of prompt p's chunk c, or -1 for zeros.
        var source = new int[prompts.Count, count];
        var rows1 = new List<PromptChunk>();
        var rows2 = new List<PromptChunk>();
        var rowPrompt = new List<int>(); // which prompt each row encodes (-1: the empty padding chunk)
        var emptyRow = -1;
        for (var p = 0; p < prompts.Count; p++)
            for (var c = 0; c < count; c++)
            {
                if (perPrompt[p] is { } chunks && c < chunks.Second.Count)
                {
                    source[p, c] = rows2.Count;
                    if (!Refiner) rows1.Add(chunks.First[c]);
                    rows2.Add(chunks.Second[c]);
                    rowPrompt.Add(p);
                }
                else if (perPrompt[p] is null && c == 0)
                {
                    source[p, c] = -1;
                }
                else
                {
                    if (emptyRow < 0)
                    {
                        emptyRow = rows2.Count;
                        if (!Refiner) rows1.Add(_chunker1!.EmptyChunk);
                        rows2.Add(_chunker2.EmptyChunk);
                        rowPrompt.Add(-1);
                    }
                    source[p, c] = emptyRow;
                }
            }
        timings.TokenizeDone();

        // The prompt itself (the last) is always encoded, so there is at least one row.
        var rows = rows2.Count;
        var (hidden1, width1, _) = encoder1?.EncodeForXl(Ids(rows1, seq), rows, pooled: false, runOptions) ?? ([], 0, null);
        var (hidden2, width2, pooledOrNull) = encoder2.EncodeForXl(Ids(rows2, seq), rows, pooled: true, runOptions);
        var pooled = pooledOrNull!;
        // (TensorPrimitives.IsFiniteAll is false for an empty span: the refiner has no encoder 1.)
        if ((hidden1.Length > 0 && !TensorPrimitives.IsFiniteAll<float>(hidden1)) || !TensorPrimitives.IsFiniteAll<float>(hidden2) || !TensorPrimitives.IsFiniteAll<float>(pooled))
            throw new GenerationNumericsException(NumericsStage.TextEncoder, null,
                $"an SDXL text encoder ({encoder2Path}{(Refiner ? "" : " or text_encoder/")}) returned NaN/infinity for the prompt: an fp16 encoder overflowing, or a broken export.");
        // Emphasis on each encoder's own states, chunk by chunk (the pooled projection is left as the encoder gave it).
        for (var r = 0; r < rows; r++)
        {
            var negative = rowPrompt[r] < prompts.Count - 1;
            if (!Refiner && rows1[r].IsWeighted)
            {
                var chunk = hidden1.AsSpan(r * seq * width1, seq * width1);
                PromptEncoder.ApplyWeights(chunk, rows1[r].Weights, width1);
                WeightedConditioning.RequireFinite(chunk, prompts[rowPrompt[r]], negative);
            }
            if (rows2[r].IsWeighted)
            {
                var chunk = hidden2.AsSpan(r * seq * width2, seq * width2);
                PromptEncoder.ApplyWeights(chunk, rows2[r].Weights, width2);
                WeightedConditioning.RequireFinite(chunk, prompts[rowPrompt[r]], negative);
            }
        }
        var pooledWidth = pooled.Length / rows;
        var hiddenSize = width1 + width2;

        var batch = prompts.Count * imagesPerPrompt;
        var length = count * seq;
        var states = new float[batch * length * hiddenSize];
        var textEmbeds = new float[batch * pooledWidth];
        var idCount = TimeIdCount;
        var allTimeIds = new float[batch * idCount];
        for (var p = 0; p < prompts.Count; p++)
            for (var i = 0; i < imagesPerPrompt; i++)
            {
                var row = p * imagesPerPrompt + i;
                timeIds[p].AsSpan(0, idCount).CopyTo(allTimeIds.AsSpan(row * idCount));
                for (var c = 0; c < count; c++)
                {
                    var e = source[p, c];
                    if (e < 0) continue; // zeros
                    for (var t = 0; t < seq; t++)
                    {
                        var target = states.AsSpan((row * length + c * seq + t) * hiddenSize, hiddenSize);
                        hidden1.AsSpan((e * seq + t) * width1, width1).CopyTo(target);
                        hidden2.AsSpan((e * seq + t) * width2, width2).CopyTo(target[width1..]);
                    }
                }
                // A1111 takes the pooled embedding from the first chunk.
                if (source[p, 0] is var first and >= 0)
                    pooled.AsSpan(first * pooledWidth, pooledWidth).CopyTo(textEmbeds.AsSpan(row * pooledWidth));
            }
        return new UNetInputs
        {
            EncoderHiddenStates = states, Batch = batch, SequenceLength = length, HiddenSize = hiddenSize,
            TextEmbeds = textEmbeds, TimeIds = allTimeIds,
        };
    }

    private static int[] Ids(List<PromptChunk> chunks, int seq)
    {
        var ids = new int[chunks.Count * seq];
        for (var r = 0; r < chunks.Count; r++) chunks[r].Ids.CopyTo(ids, r * seq);
        return ids;
    }
}
