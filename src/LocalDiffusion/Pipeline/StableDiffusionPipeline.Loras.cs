using LocalDiffusion.Embeddings;
using LocalDiffusion.Adapters;
using LocalDiffusion.Onnx;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Pipeline;

// LoRAs: the set a request needs (the pipeline's, the request's, the prompt's <lora:NAME:WEIGHT> tags) is merged into the
// UNet's and text encoders' weights before it runs. Generations with the same set share the sessions; a different set
// waits until none is running, then replaces the weights (an empty set restores the model's own sessions exactly).
public sealed partial class StableDiffusionPipeline
{
    private readonly object _loraGate = new();
    private string _loraIdentity = "";
    private int _loraUsers;
    private List<string> _loraNotes = [];

    /// <summary>What the weights now come from: the LoRA set and, after a request that used them, the embeddings ("" for the model's own).</summary>
    internal string ActiveAdapterIdentity
    {
        get
        {
            lock (_loraGate) return _loraIdentity;
        }
    }

    /// <summary>The LoRA set now merged into the weights (empty: none).</summary>
    public IReadOnlyList<LoraAdapter> ActiveLoras { get; private set; } = [];

    /// <summary>The textual-inversion embeddings prompts can use, by name (empty: none loaded).</summary>
    public IReadOnlyList<TextualInversion> Embeddings => _model.Embeddings?.Loaded ?? [];

    /// <summary>Files of <see cref="PipelineOptions.EmbeddingsDirectory"/> that were not loaded, and why (A1111's "skipped").</summary>
    public IReadOnlyList<SkippedEmbedding> SkippedEmbeddings => _model.Embeddings?.Skipped ?? [];

    // A family whose weights no LoRA can reach refuses LoRAs by name, rather than silently leaving them out of the picture.
    private void CheckLorasTaken(GenerationRequest request)
    {
        if (_model.LoraTargets.Count > 0) return;
        if (request.Loras is { Count: > 0 } || (request.Prompt is { } prompt && PromptLoras.Extract(prompt).Loras.Count > 0))
            throw new ModelIncompatibleException(nameof(request.Loras), Info.Family.Name,
                called => $"LoRAs are not supported with {Info.Family.Name} yet (only SD 1.x/2.x/XL); remove the <lora:…> tags and {called}.");
    }

    // The request with its prompt's <lora:…> tags taken out and Loras holding the full set (the pipeline's first).
    private GenerationRequest ResolveLoras(GenerationRequest request)
    {
        if (request.Prompt is null) throw new InvalidRequestException(nameof(request.Prompt), null, null, called => $"{called} must not be null.");
        var (prompt, tags) = PromptLoras.Extract(request.Prompt);
        var set = new List<LoraAdapter>(_options.Loras);
        set.AddRange(request.Loras ?? []);
        foreach (var (name, weight) in tags) set.Add(new LoraAdapter(PromptLoras.Resolve(name, _options.LoraDirectory), weight));
        foreach (var lora in set)
            if (!File.Exists(lora.Path)) throw new InvalidRequestException(nameof(request.Loras), null, null, called => $"LoRA file not found: {lora.Path}");
        request = request with { Prompt = prompt, Loras = set };
        return request with { UsesEmbeddings = _model.UsesEmbeddings(request) };
    }

    // What the weights are made from: the LoRA set, and the embeddings when the request uses any.
    private string LoraIdentity(GenerationRequest request) =>
        string.Join("\n", (request.Loras ?? []).Select(l => l.Identity)) + (request.UsesEmbeddings ? "\n" + _model.Embeddings!.Identity : "");

    /// <summary>Holds the request's LoRA set merged into the weights until disposed, switching to it first when needed.</summary>
    private LoraLease UseLoras(GenerationRequest request)
    {
        var identity = LoraIdentity(request);
        lock (_loraGate)
        {
            while (identity != _loraIdentity && _loraUsers > 0) Monitor.Wait(_loraGate);
            if (identity != _loraIdentity) Switch(request.Loras ?? [], identity, request.UsesEmbeddings);
            _loraUsers++;
            return new LoraLease(this, _loraNotes);
        }
    }

    private void ReturnLoras()
    {
        lock (_loraGate)
        {
            _loraUsers--;
            Monitor.PulseAll(_loraGate);
        }
    }

    // Merges every component's weights first, so a LoRA that fails leaves the current set in place.
    private void Switch(IReadOnlyList<LoraAdapter> set, string identity, bool embeddings)
    {
        var files = new List<(LoraFile, float)>();
        var merged = new List<(OnnxComponent, InitializerOverrides?)>();
        var notes = new List<string>();
        try
        {
            foreach (var lora in set) files.Add((LoraFile.Open(lora.Path), lora.Weight));
            foreach (var component in _model.LoraTargets)
            {
                var overrides = set.Count == 0 ? null
                    : LoraMerge.Build(component.Name, component.FilePath, files, identity, _options.SkipUnmatchedLoraLayers, notes);
                // Textual inversion extends the text encoders' token tables in the same set of replaced weights.
                if (embeddings && component.Name.StartsWith("text_encoder", StringComparison.Ordinal))
                {
                    overrides ??= new InitializerOverrides(identity);
                    _model.Embeddings!.AddTo(overrides, component.Name);
                }
                merged.Add((component, overrides));
            }
            // A LoRA whose layers all belong to components this model lacks (an SDXL text_encoder_2 LoRA on SD 1.5) changes nothing.
            var matchedComponents = files.SelectMany(f => f.Item1.Layers.Select(l => l.Key.Component)).Distinct()
                .Where(c => !_model.LoraTargets.Any(m => m.Name == c)).ToList();
            if (matchedComponents.Count > 0 && !_options.SkipUnmatchedLoraLayers)
            {
                var (file, _) = files.First(f => f.Item1.Layers.Any(l => matchedComponents.Contains(l.Key.Component)));
                var layer = file.Layers.First(l => matchedComponents.Contains(l.Key.Component));
                throw new LoraException(file.Path, layer.Down.Name, $"this LoRA changes {layer.Key.Component}, which this model does not have: it targets {LoraTargets.Describe(LoraTargets.Classify(file))} (an SDXL LoRA on an SD 1.x/2.x model?)");
            }
        }
        catch
        {
            foreach (var (_, overrides) in merged) overrides?.Dispose();
            throw;
        }
        finally
        {
            foreach (var (file, _) in files) file.Dispose();
        }
        foreach (var (component, overrides) in merged) component.SetOverrides(overrides);
        _loraIdentity = identity;
        _loraNotes = notes;
        ActiveLoras = set;
    }

    private readonly struct LoraLease(StableDiffusionPipeline owner, IReadOnlyList<string> notes) : IDisposable
    {
        public IReadOnlyList<string> Notes { get; } = notes;

        public void Dispose() => owner?.ReturnLoras();
    }
}
