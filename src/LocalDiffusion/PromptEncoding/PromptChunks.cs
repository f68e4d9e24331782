namespace LocalDiffusion.PromptEncoding;

/// <summary>One text-encoder row: BOS, 75 tokens, EOS, padding, and each position's attention weight.</summary>
internal sealed record PromptChunk(int[] Ids, float[] Weights)
{
    /// <summary>Whether any weight differs from 1 (the embedding is then re-weighted).</summary>
    public bool IsWeighted => Array.Exists(Weights, w => w != 1f);
}

/// <summary>
/// Splits weighted prompt runs into 75-token chunks as AUTOMATIC1111's <c>tokenize_line</c> (modules/sd_hijack_clip.py)
/// does: a full chunk ends at its last comma when that comma is at most 20 tokens back (<c>comma_padding_backtrack</c>'s
/// default), <c>BREAK</c> ends a chunk early, each chunk is padded with EOS, framed by BOS and EOS, and padded after its
/// first EOS with the tokenizer's pad id (A1111's <c>id_pad</c>, <c>!</c> for OpenCLIP).
/// </summary>
internal static class PromptChunks
{
    private const int CommaBacktrack = 20;

    /// <summary>
    /// Chunks the runs' tokens (<paramref name="tokenize"/> gives each run's BPE ids, no BOS/EOS) into chunks of
    /// <paramref name="chunkLength"/> tokens (75 for CLIP's 77) plus BOS and EOS. A null <paramref name="comma"/> turns
    /// the comma backtrack off. With <paramref name="embeddings"/>, each textual-inversion name among a run's tokens is
    /// replaced by its vectors' ids, as A1111's <c>tokenize_line</c> does (one token each, all in one chunk).
    /// </summary>
    public static List<PromptChunk> Split(IReadOnlyList<WeightedText> runs, Func<string, IReadOnlyList<int>> tokenize,
        int bos, int eos, int pad, int? comma, int chunkLength = 75, Embeddings.TriggerMatcher? embeddings = null)
    {
        var chunks = new List<PromptChunk>();
        var tokens = new List<int>(chunkLength);
        var weights = new List<float>(chunkLength);
        var lastComma = -1;

        void NextChunk()
        {
            var ids = new int[chunkLength + 2];
            var w = new float[chunkLength + 2];
            ids.AsSpan().Fill(eos);
            w.AsSpan().Fill(1f);
            ids[0] = bos;
            tokens.CopyTo(ids, 1);
            weights.CopyTo(w, 1);
            // process_tokens: everything after the first EOS becomes id_pad.
            ids.AsSpan(tokens.Count + 2).Fill(pad);
            chunks.Add(new PromptChunk(ids, w));
            tokens.Clear();
            weights.Clear();
            lastComma = -1;
        }

        foreach (var run in runs)
        {
            if (run.IsBreak)
            {
                NextChunk();
                continue;
            }
            var weight = (float)run.Weight;
            var runTokens = tokenize(run.Text);
            for (var i = 0; i < runTokens.Count;)
            {
                var token = runTokens[i];
                var trigger = embeddings?.Match(runTokens, i);
                if (token == comma)
                {
                    lastComma = tokens.Count;
                }
                else if (tokens.Count == chunkLength && lastComma != -1 && tokens.Count - lastComma <= CommaBacktrack)
                {
                    // Move the words after the last comma to the next chunk.
                    var start = lastComma + 1;
                    var movedTokens = tokens.GetRange(start, tokens.Count - start);
                    var movedWeights = weights.GetRange(start, weights.Count - start);
                    tokens.RemoveRange(start, tokens.Count - start);
                    weights.RemoveRange(start, weights.Count - start);
                    NextChunk();
                    tokens.AddRange(movedTokens);
                    weights.AddRange(movedWeights);
                }
                if (tokens.Count == chunkLength) NextChunk();
                if (trigger is null)
                {
                    tokens.Add(token);
                    weights.Add(weight);
                    i++;
                    continue;
                }
                // An embedding's vectors stay together: they start a new chunk when this one cannot hold them all.
                if (tokens.Count + trigger.Ids.Length > chunkLength) NextChunk();
                tokens.AddRange(trigger.Ids);
                for (var k = 0; k < trigger.Ids.Length; k++) weights.Add(weight);
                i += trigger.Tokens.Length;
            }
        }
        if (tokens.Count > 0 || chunks.Count == 0) NextChunk();
        return chunks;
    }
}
