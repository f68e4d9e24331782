using LocalDiffusion.Embeddings;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Families.StableDiffusion;

// Textual inversion: the embeddings of PipelineOptions.Embeddings and EmbeddingsDirectory are read and checked at load,
// their names map to fixed token ids, and a request whose prompt or negative prompt uses one runs with the text encoders'
// token-embedding tables extended by every embedding's vectors (merged with the LoRA set's weights, switched the same
// way). A request that uses none runs the model's own tables, so its conditioning is bit-identical to a model without
// embeddings.
internal sealed partial class StableDiffusionModel
{
    /// <summary>Reads the embeddings the options name, for this model's text encoders.</summary>
    public void LoadEmbeddings(PipelineOptions options, ClipTokenizer tokenizer, ClipTokenizer? tokenizer2)
    {
        if (options.Embeddings.Count == 0 && options.EmbeddingsDirectory is null) return;
        List<EmbeddingSlot> slots = _sdxlPromptEncoder is null
            ? [new(_textEncoder.Component.Name, _textEncoder.Component.FilePath, tokenizer, TextualInversion.Single)]
            : _sdxlPromptEncoder.Refiner
                ? [new(_textEncoder.Component.Name, _textEncoder.Component.FilePath, tokenizer, TextualInversion.ClipG)]
                : [new(_textEncoder.Component.Name, _textEncoder.Component.FilePath, tokenizer, TextualInversion.ClipL),
                   new(_textEncoder2!.Component.Name, _textEncoder2.Component.FilePath, tokenizer2!, TextualInversion.ClipG)];
        _embeddings = EmbeddingSet.Load(options.Embeddings, options.EmbeddingsDirectory, slots);
        if (_sdxlPromptEncoder is { Chunkers: var (first, second) })
        {
            if (first is not null) first.Embeddings = _embeddings.MatcherFor(_textEncoder.Component.Name);
            second.Embeddings = _embeddings.MatcherFor(_sdxlPromptEncoder.Refiner ? _textEncoder.Component.Name : _textEncoder2!.Component.Name);
        }
        else _promptEncoder.Embeddings = _embeddings.MatcherFor(_textEncoder.Component.Name);
    }

    /// <inheritdoc/>
    public override bool UsesEmbeddings(GenerationRequest request)
    {
        // Tokenized exactly as encoding will: the ids of embedding vectors are negative.
        if (_embeddings is not { Rows: > 0 }) return false;
        var chunker = _sdxlPromptEncoder?.Chunkers.Second ?? _promptEncoder;
        foreach (var (text, property) in new[] { (request.Prompt, nameof(request.Prompt)), (request.NegativePrompt ?? "", nameof(request.NegativePrompt)) })
        {
            if (request.PromptWeighting) PromptEncoder.Validate(text, property);
            foreach (var chunk in chunker.Tokenize(text, request.PromptWeighting).Chunks)
                if (Array.Exists(chunk.Ids, id => id < 0)) return true;
        }
        return false;
    }
}
