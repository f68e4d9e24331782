using LocalDiffusion.Embeddings;
using LocalDiffusion.Model;

namespace LocalDiffusion.Families;

// Textual inversion for SD 3 and FLUX.1: the CLIP encoders take embeddings as SD's do (their token-embedding tables
// extended by the vectors, switched with the LoRA set's weights), each the vectors of its own width — a pair's clip_l and
// clip_g, a one-set file on the encoder of its width. T5 has no embeddings: it reads the prompt as written, trigger names
// included as words (an A1111 trigger is a word of the prompt, and T5's rows then do not depend on the files loaded), and
// so does a CLIP encoder an embedding has no vectors for. ComfyUI drops an embedding from an encoder of another width.
internal abstract partial class FlowFamilyModel
{
    private EmbeddingSet? _embeddings;
    private IReadOnlyList<EmbeddingSlot> _embeddingSlots = [];

    /// <inheritdoc/>
    public override EmbeddingSet? Embeddings => _embeddings;

    /// <summary>
    /// Reads the embeddings the options name for <paramref name="slots"/> (the CLIP encoders: CLIP-L under
    /// <see cref="TextualInversion.ClipL"/>, CLIP-G under <see cref="TextualInversion.ClipG"/>).
    /// </summary>
    public void LoadEmbeddings(PipelineOptions options, IReadOnlyList<EmbeddingSlot> slots)
    {
        if (options.Embeddings.Count == 0 && options.EmbeddingsDirectory is null) return;
        _embeddings = EmbeddingSet.Load(options.Embeddings, options.EmbeddingsDirectory, slots, perEncoder: true);
        _embeddingSlots = slots;
    }

    /// <summary>The matcher of <paramref name="component"/>'s prompt ids (null: no embeddings loaded).</summary>
    protected TriggerMatcher? EmbeddingsFor(string component) => _embeddings?.MatcherFor(component);

    /// <inheritdoc/>
    public override bool UsesEmbeddings(GenerationRequest request)
    {
        // Tokenized exactly as encoding will (embedding ids are negative). A family without an unconditional pass never
        // encodes the negative prompt, so its names are not looked at there (the request's note says it was not used).
        if (_embeddings is not { Rows: > 0 } set) return false;
        string[] texts = Guidance == GuidanceMode.ClassifierFree ? [request.Prompt, request.NegativePrompt ?? ""] : [request.Prompt];
        foreach (var slot in _embeddingSlots)
        {
            if (set.MatcherFor(slot.Component) is not { } matcher) continue;
            foreach (var text in texts)
                if (Array.Exists(matcher.Encode(slot.Tokenizer, text), id => id < 0)) return true;
        }
        return false;
    }
}
