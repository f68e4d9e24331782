using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// One prompt of an SD 3 / FLUX.1 request, read once for AUTOMATIC1111's attention syntax (<see cref="PromptAttention"/>):
/// the runs of text the encoders are given, markup removed, each with its weight. A prompt whose parse is its own text at
/// weight 1 (no brackets, escapes or BREAK), and any prompt with weighting off, is <see cref="IsPlain"/>: it is tokenized
/// whole, exactly as before weighting existed, so its conditioning is bit-identical.
/// </summary>
/// <remarks>
/// BREAK is dropped (<see cref="IgnoredBreak"/>): a flow prompt is one CLIP window of 77 tokens and one T5 sequence of
/// max_sequence_length, so there is no next chunk to start. (Forge starts another 256-token T5 sequence and concatenates
/// them, which changes the transformer's text length; diffusers' pipelines, whose shapes this engine keeps, have no BREAK.)
/// </remarks>
internal sealed record FlowPrompt(string Text, IReadOnlyList<WeightedText> Runs, bool IsPlain, bool IgnoredBreak, bool Negative)
{
    /// <summary>The token counts the rows made of this prompt saw, for the truncation warnings.</summary>
    public FlowPromptLengths Lengths { get; } = new();

    /// <summary>The prompt as plain text, weighting off.</summary>
    public static FlowPrompt Plain(string text, bool negative = false) => new(text, [new WeightedText(text, 1.0)], true, false, negative);

    /// <summary>
    /// <paramref name="text"/> read with weighting on or off. The syntax was checked by <see cref="PromptEncoder.Validate"/>
    /// before the request started, so the parse succeeds here.
    /// </summary>
    public static FlowPrompt Read(string text, bool weighting, bool negative)
    {
        if (!weighting) return Plain(text, negative);
        var parsed = PromptAttention.Parse(text);
        var runs = new List<WeightedText>(parsed.Count);
        var ignoredBreak = false;
        foreach (var run in parsed)
        {
            if (run.IsBreak) ignoredBreak = true;
            else runs.Add(run);
        }
        var plain = !ignoredBreak && runs.Count == 1 && runs[0].Weight == 1.0 && runs[0].Text == text;
        return plain ? Plain(text, negative) : new FlowPrompt(text, runs, false, ignoredBreak, negative);
    }

    /// <summary>
    /// The CLIP row of this prompt: BOS, at most <see cref="ClipTokenizer.MaxLength"/> − 2 tokens, EOS, padding, and each
    /// position's weight (null when <see cref="IsPlain"/>: the row is the tokenizer's, unweighted). Each run is tokenized
    /// on its own, as A1111's <c>tokenize_line</c> does, so a bracket also ends a word; tokens past the window are cut as
    /// the plain prompt's are, their weights with them.
    /// </summary>
    public (int[] Ids, float[]? Weights) ClipRow(ClipTokenizer tokenizer, Embeddings.TriggerMatcher? embeddings)
    {
        if (IsPlain)
        {
            if (embeddings is not null)
            {
                var ids = embeddings.Encode(tokenizer, Text, out var tokens);
                Lengths.NoteClip(tokens, tokenizer.MaxLength - 2);
                return (ids, null);
            }
            var tokenized = tokenizer.Encode(Text);
            Lengths.NoteClip(tokenized.Length - 2 + tokenized.TruncatedTokens, tokenizer.MaxLength - 2);
            return (tokenized.Ids, null);
        }
        // Without the comma backtrack a chunk ends only when full (or an embedding's vectors do not fit): the chunks past the
        // first are what the window cuts. Each chunk's tokens run from BOS to its first EOS.
        var chunks = PromptChunks.Split(Runs, tokenizer.EncodeTokens, tokenizer.BosId, tokenizer.EosId, tokenizer.PadId, null,
            tokenizer.MaxLength - 2, embeddings);
        var count = 0;
        foreach (var c in chunks) count += Array.IndexOf(c.Ids, tokenizer.EosId, 1) - 1;
        Lengths.NoteClip(count, tokenizer.MaxLength - 2);
        var chunk = chunks[0];
        return (chunk.Ids, chunk.IsWeighted ? chunk.Weights : null);
    }

    /// <summary>
    /// The T5 row of this prompt: <paramref name="length"/> ids (the pieces cut to <paramref name="length"/> − 1, EOS,
    /// padding) and each position's weight (null when <see cref="IsPlain"/> or every weight is 1). Each run is its own
    /// SentencePiece call, as Forge's T5 engine tokenizes A1111's runs.
    /// </summary>
    public (int[] Ids, float[]? Weights) T5Row(T5Tokenizer tokenizer, int length)
    {
        // A plain prompt is one run at weight 1: the loop gives T5Tokenizer.Encode's row, and no weights.
        var ids = new int[length]; // zero-filled: T5Tokenizer.PadId
        var weights = new float[length];
        weights.AsSpan().Fill(1f);
        var count = 0;
        var pieces = 0;
        var weighted = false;
        foreach (var run in Runs)
        {
            var weight = (float)run.Weight;
            var runPieces = tokenizer.EncodePieces(run.Text);
            pieces += runPieces.Count;
            foreach (var id in runPieces)
            {
                if (count == length - 1) break;
                ids[count] = id;
                weights[count++] = weight;
                weighted |= weight != 1f;
            }
        }
        Lengths.NoteT5(pieces);
        ids[count] = T5Tokenizer.EndOfSequenceId;
        return (ids, weighted ? weights : null);
    }
}
