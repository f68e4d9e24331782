using System.Runtime;
using LocalDiffusion.Families;
using LocalDiffusion.Adapters;
using LocalDiffusion.Onnx;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// LoRAs (and textual-inversion tables): the set a request needs (the pipeline's, the request's, the prompt's
/// <c>&lt;lora:NAME:WEIGHT&gt;</c> tags) is merged into the family's LoRA targets (UNet or transformer, text encoders) before
/// it runs. Generations with the same set share the sessions; a different set waits until none is running, then replaces
/// the weights (an empty set restores the model's own sessions exactly).
/// </summary>
internal sealed class LoraSwitch(FamilyModel model, PipelineOptions options)
{
    private readonly object _loraGate = new();
    private string _loraIdentity = "";
    private int _loraUsers;
    private List<string> _loraNotes = [];

    /// <summary>Notes of the set now merged (layers skipped by <see cref="PipelineOptions.SkipUnmatchedLoraLayers"/>).</summary>
    public IReadOnlyList<string> Notes => _loraNotes;

    /// <summary>What the weights now come from: the LoRA set and, after a request that used them, the embeddings ("" for the model's own).</summary>
    public string ActiveIdentity
    {
        get
        {
            lock (_loraGate) return _loraIdentity;
        }
    }

    /// <summary>The LoRA set now merged into the weights (empty: none).</summary>
    public IReadOnlyList<LoraAdapter> ActiveLoras { get; private set; } = [];

    // A family whose weights no LoRA can reach refuses LoRAs by name, rather than silently leaving them out of the picture.
    public void CheckTaken(GenerationRequest request)
    {
        if (model.LoraTargets.Count > 0) return;
        if (request.Loras is { Count: > 0 } || (request.Prompt is { } prompt && PromptLoras.Extract(prompt).Loras.Count > 0))
            throw new ModelIncompatibleException(nameof(request.Loras), model.Info.Family.Name,
                called => $"LoRAs are not supported with {model.Info.Family.Name} yet (only SD 1.x/2.x/XL); remove the <lora:…> tags and {called}.");
    }

    // The request with its prompt's <lora:…> tags taken out and Loras holding the full set (the pipeline's first).
    public GenerationRequest Resolve(GenerationRequest request)
    {
        if (request.Prompt is null) throw new InvalidRequestException(nameof(request.Prompt), null, null, called => $"{called} must not be null.");
        var (prompt, tags) = PromptLoras.Extract(request.Prompt);
        var set = new List<LoraAdapter>(options.Loras);
        set.AddRange(request.Loras ?? []);
        foreach (var (name, weight) in tags) set.Add(new LoraAdapter(PromptLoras.Resolve(name, options.LoraDirectory), weight));
        foreach (var lora in set)
            if (!File.Exists(lora.Path)) throw new InvalidRequestException(nameof(request.Loras), null, null, called => $"LoRA file not found: {lora.Path}");
        request = request with { Prompt = prompt, Loras = set };
        return request with { UsesEmbeddings = model.UsesEmbeddings(request) };
    }

    // What the weights are made from: the LoRA set, and the embeddings when the request uses any.
    public string Identity(GenerationRequest request) =>
        string.Join("\n", (request.Loras ?? []).Select(l => l.Identity)) + (request.UsesEmbeddings ? "\n" + model.Embeddings!.Identity : "");

    /// <summary>Holds the request's LoRA set merged into the weights until disposed, switching to it first when needed.</summary>
    public Lease Use(GenerationRequest request)
    {
        var identity = Identity(request);
        lock (_loraGate)
        {
            while (identity != _loraIdentity && _loraUsers > 0) Monitor.Wait(_loraGate);
            if (identity != _loraIdentity) Switch(request.Loras ?? [], identity, request.UsesEmbeddings);
            _loraUsers++;
            return new Lease(this, _loraNotes);
        }
    }

    private void Return()
    {
        lock (_loraGate)
        {
            _loraUsers--;
            Monitor.PulseAll(_loraGate);
        }
    }

    // Replaces the merged weights. The files are read and checked against the model first, so a file that cannot apply
    // leaves the current set in place. Then every component's old weights are released before its new ones are merged —
    // one set in memory at a time, not two (a UNet's changed weights are ~1 GB at SD 1.5 size) — and their arrays are
    // given back to the system at once. A failure while merging leaves the model's own weights (identity ""), and the
    // next request that needs the set merges it again.
    private void Switch(IReadOnlyList<LoraAdapter> set, string identity, bool embeddings)
    {
        var files = new List<(LoraFile, float)>();
        try
        {
            foreach (var lora in set) files.Add((LoraFile.Open(lora.Path), lora.Weight));
            // A LoRA whose layers all belong to components this model lacks (an SDXL text_encoder_2 LoRA on SD 1.5) changes nothing.
            var missingComponents = files.SelectMany(f => f.Item1.Layers.Select(l => l.Key.Component)).Distinct()
                .Where(c => !model.LoraTargets.Any(m => m.Name == c)).ToList();
            if (missingComponents.Count > 0 && !options.SkipUnmatchedLoraLayers)
            {
                var (file, _) = files.First(f => f.Item1.Layers.Any(l => missingComponents.Contains(l.Key.Component)));
                var layer = file.Layers.First(l => missingComponents.Contains(l.Key.Component));
                throw new LoraForAnotherModelException(file.Path, layer.Down.Name, $"this LoRA changes {layer.Key.Component}, which this model does not have: it targets {LoraTargets.Describe(LoraTargets.Classify(file))} (an SDXL LoRA on an SD 1.x/2.x model?)");
            }
            Release();
            var notes = new List<string>();
            try
            {
                foreach (var component in model.LoraTargets)
                {
                    // bench lora --variant rewrite: a set already rewritten opens from its file, without merging again.
                    var overrides = set.Count == 0 ? null
                        : LoraWeightsRewrite.Current?.Has(component.FilePath, identity) == true ? new InitializerOverrides(identity)
                        : LoraMerge.Build(component.Name, component.FilePath, files, identity, options.SkipUnmatchedLoraLayers, notes);
                    // Textual inversion extends the text encoders' token tables in the same set of replaced weights.
                    if (embeddings && model.Embeddings!.Extends(component.Name))
                    {
                        overrides ??= new InitializerOverrides(identity);
                        model.Embeddings!.AddTo(overrides, component.Name);
                    }
                    component.SetOverrides(overrides);
                }
            }
            catch
            {
                foreach (var component in model.LoraTargets) component.SetOverrides(null); // the model's own weights, as identity "" says
                throw;
            }
            _loraIdentity = identity;
            _loraNotes = notes;
            ActiveLoras = set;
        }
        finally
        {
            foreach (var (file, _) in files) file.Dispose();
        }
    }

    // Back to the model's own weights, the replaced arrays returned to the system now: they are large-object-heap arrays
    // that a later collection would otherwise keep in the process for as long as nothing else triggers one.
    private void Release()
    {
        if (_loraIdentity.Length == 0) return;
        foreach (var component in model.LoraTargets) component.SetOverrides(null);
        _loraIdentity = "";
        _loraNotes = [];
        ActiveLoras = [];
        // Aggressive: the collector also decommits what it frees, instead of keeping the free regions for later allocations.
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    /// <summary>The set held merged while a generation runs.</summary>
    public readonly struct Lease(LoraSwitch owner, IReadOnlyList<string> notes) : IDisposable
    {
        /// <summary>The set's notes.</summary>
        public IReadOnlyList<string> Notes { get; } = notes;

        /// <summary>Lets another set in once no generation holds this one.</summary>
        public void Dispose() => owner?.Return();
    }
}
