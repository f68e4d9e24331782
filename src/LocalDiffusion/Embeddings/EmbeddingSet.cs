using LocalDiffusion.Adapters;
using LocalDiffusion.Onnx.Rewriting;
using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Embeddings;

/// <summary>An embedding file that was not loaded, and why (A1111's "skipped" list); <see cref="Embedding"/> when it was readable.</summary>
public sealed record SkippedEmbedding(string FilePath, string Name, string Reason, TextualInversion? Embedding);

/// <summary>One text encoder an embedding set extends: its model file, its tokenizer, and which vectors of a file it takes.</summary>
internal sealed record EmbeddingSlot(string Component, string ModelPath, ClipTokenizer Tokenizer, string VectorKey);

/// <summary>
/// The embeddings a pipeline knows (its explicit files and those in its folder), checked against its text encoders, with
/// fixed token ids. Each encoder's token-embedding table ([vocabulary, width], found by <see cref="ModelWeights.FindTokenEmbedding"/>)
/// is extended with every embedding's vectors as new rows V … V+N−1, replaced through ONNX Runtime's AddInitializer when a
/// prompt uses an embedding (ONNX Runtime 1.32 accepts a replacement of another shape: measured on models/test/ti). The
/// prompt's ids for those rows are negative, −N … −1: Gather counts negative indices from the end of the extended table,
/// and CLIP's pooling at argmax(input_ids) still finds the EOS, as in A1111 (which puts id 0 at embedding positions); ids
/// ≥ V would be the argmax and move SDXL's pooled text_embeds onto the embedding.
/// Per encoder (SD 3, FLUX.1: <c>perEncoder</c>), each table is extended only by the embeddings that have vectors for it,
/// and an encoder an embedding has none for reads its name as the prompt's text, as T5 does.
/// </summary>
internal sealed class EmbeddingSet
{
    private readonly (EmbeddingSlot Slot, WeightTarget Table, (TextualInversion Embedding, string Key)[] Members)[] _tables;
    private readonly Dictionary<string, TriggerMatcher> _matchers = new(StringComparer.Ordinal);

    private EmbeddingSet(List<TextualInversion> loaded, List<SkippedEmbedding> skipped,
        (EmbeddingSlot Slot, WeightTarget Table, (TextualInversion Embedding, string Key)[] Members)[] tables)
    {
        Loaded = loaded;
        Skipped = skipped;
        _tables = tables;
        Rows = loaded.Sum(e => e.VectorCount);
        Identity = "ti:" + string.Join("|", loaded.Select(e => new LoraAdapter(e.FilePath).Identity));
        foreach (var (slot, _, members) in tables)
        {
            var triggers = new List<Trigger>();
            var rows = members.Sum(m => m.Embedding.VectorCount);
            var row = 0;
            foreach (var (e, _) in members)
            {
                triggers.Add(new Trigger(e.Name, [.. slot.Tokenizer.EncodeTokens(e.Name)], Enumerable.Range(row - rows, e.VectorCount).ToArray(), null));
                row += e.VectorCount;
            }
            foreach (var s in skipped.Where(s => loaded.All(e => e.Name != s.Name)))
                triggers.Add(new Trigger(s.Name, [.. slot.Tokenizer.EncodeTokens(s.Name)], [], $"{s.FilePath}: {s.Reason}"));
            _matchers[slot.Component] = new TriggerMatcher(triggers);
        }
    }

    /// <summary>The embeddings a prompt can use, in id order (by name).</summary>
    public IReadOnlyList<TextualInversion> Loaded { get; }

    /// <summary>Files of the folder that were not loaded, and why.</summary>
    public IReadOnlyList<SkippedEmbedding> Skipped { get; }

    /// <summary>Every loaded embedding's vectors (the rows added to each table, unless per encoder).</summary>
    public int Rows { get; }

    /// <summary>What the extended tables are made from (files, sizes, times), part of the adapter identity.</summary>
    public string Identity { get; }

    /// <summary>The matcher for the prompt chunks of <paramref name="component"/>'s tokenizer, or null when it has none.</summary>
    public TriggerMatcher? MatcherFor(string component) => _matchers.GetValueOrDefault(component);

    /// <summary>Whether <paramref name="component"/>'s table is extended (some loaded embedding has vectors for it).</summary>
    public bool Extends(string component) => Array.Exists(_tables, t => t.Slot.Component == component && t.Members.Length > 0);

    /// <summary>
    /// Loads <paramref name="files"/> (each must fit this model, else a <see cref="TextualInversionException"/>) and the
    /// embedding files under <paramref name="directory"/> (those that do not fit are <see cref="Skipped"/>, as A1111 skips
    /// them). A name used twice is refused (explicit files) or skipped (the folder's). With <paramref name="perEncoder"/>
    /// (SD 3, FLUX.1), an embedding need only fit one encoder: a pair's clip_l / clip_g go to the slots of those keys, one set
    /// of vectors to the slots whose tables have its width; every vector set that does go to a slot must have its width.
    /// </summary>
    public static EmbeddingSet Load(IReadOnlyList<string> files, string? directory, IReadOnlyList<EmbeddingSlot> slots, bool perEncoder = false)
    {
        var tables = new (EmbeddingSlot, WeightTarget?)[slots.Count];
        for (var i = 0; i < slots.Count; i++)
        {
            using var weights = ModelWeights.Open(slots[i].ModelPath);
            tables[i] = (slots[i], weights.FindTokenEmbedding());
        }
        var loaded = new List<TextualInversion>();
        var skipped = new List<SkippedEmbedding>();
        foreach (var file in files)
        {
            var embedding = TextualInversionFile.Load(file);
            if (Misfit(embedding, tables, perEncoder) is { } problem) throw new TextualInversionException(file, problem.Key, null, problem.Reason);
            if (loaded.FirstOrDefault(e => e.Name == embedding.Name) is { } taken)
                throw new TextualInversionException(file, null, null, $"the name \"{embedding.Name}\" is already {taken.FilePath}'s: a prompt could not tell them apart");
            loaded.Add(embedding);
        }
        if (directory is not null)
        {
            if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"The embeddings folder {directory} does not exist.");
            foreach (var file in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                if (!TextualInversionFile.Extensions.Contains(Path.GetExtension(file).ToLowerInvariant())) continue;
                var name = Path.GetFileNameWithoutExtension(file);
                try
                {
                    var embedding = TextualInversionFile.Load(file);
                    if (Misfit(embedding, tables, perEncoder) is { } problem) skipped.Add(new SkippedEmbedding(file, name, $"key \"{problem.Key}\": {problem.Reason}", embedding));
                    else if (loaded.FirstOrDefault(e => e.Name == name) is { } taken) skipped.Add(new SkippedEmbedding(file, name, $"the name is already {taken.FilePath}'s", embedding));
                    else loaded.Add(embedding);
                }
                catch (Exception e) when (e is TextualInversionException or SafetensorsException)
                {
                    skipped.Add(new SkippedEmbedding(file, name, e.Message, null));
                }
            }
        }
        loaded.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        if (loaded.Count == 0) return new EmbeddingSet(loaded, skipped, []);
        var extended = new (EmbeddingSlot, WeightTarget, (TextualInversion, string)[])[tables.Length];
        for (var i = 0; i < tables.Length; i++)
        {
            var (slot, table) = (tables[i].Item1, tables[i].Item2!);
            var members = new List<(TextualInversion, string)>();
            foreach (var e in loaded)
                if (KeyFor(e, slot, table, perEncoder) is { } key) members.Add((e, key));
            extended[i] = (slot, table, [.. members]);
        }
        return new EmbeddingSet(loaded, skipped, extended);
    }

    // The key of the vectors the slot takes from the embedding, or null when it takes none (per encoder only).
    private static string? KeyFor(TextualInversion embedding, EmbeddingSlot slot, WeightTarget table, bool perEncoder) =>
        !perEncoder ? slot.VectorKey
        : embedding.IsSdxlPair ? (embedding.Vectors.ContainsKey(slot.VectorKey) ? slot.VectorKey : null)
        : embedding.Width(TextualInversion.Single) == table.Dims[1] ? TextualInversion.Single : null;

    // Why the embedding cannot be used with these encoders (the key concerned and the reason), or null when it fits.
    private static (string Key, string Reason)? Misfit(TextualInversion embedding, (EmbeddingSlot Slot, WeightTarget? Table)[] tables, bool perEncoder)
    {
        if (perEncoder) return MisfitPerEncoder(embedding, tables);
        foreach (var (slot, table) in tables)
        {
            var key = embedding.SourceKeys.GetValueOrDefault(slot.VectorKey) ?? embedding.SourceKeys.Values.First();
            if (table is null)
                return (key, $"the {slot.Component} ({slot.ModelPath}) has no token-embedding table (a Gather of a [vocabulary, width] initializer by input_ids) for the vectors to join");
            if (!embedding.Vectors.ContainsKey(slot.VectorKey))
                return (key, embedding.IsSdxlPair
                    ? "this is an SDXL embedding (clip_l and clip_g); this model has one text encoder (SD 1.x/2.x)"
                    : $"this embedding has one set of vectors (width {embedding.Width(TextualInversion.Single)}, an SD 1.x/2.x embedding); this SDXL model needs clip_l and clip_g");
            if (embedding.Width(slot.VectorKey) != table.Dims[1])
                return (key, $"its vectors are {embedding.Width(slot.VectorKey)} wide, but the {slot.Component} ({slot.ModelPath}) embeds tokens in {table.Dims[1]}: it was made for another model");
        }
        return null;
    }

    // Per encoder: every table must exist, a pair's sets must each fit the slot of their key, and one set must fit some slot.
    private static (string Key, string Reason)? MisfitPerEncoder(TextualInversion embedding, (EmbeddingSlot Slot, WeightTarget? Table)[] tables)
    {
        var used = false;
        foreach (var (slot, table) in tables)
        {
            var key = embedding.SourceKeys.GetValueOrDefault(slot.VectorKey) ?? embedding.SourceKeys.Values.First();
            if (table is null)
                return (key, $"the {slot.Component} ({slot.ModelPath}) has no token-embedding table (a Gather of a [vocabulary, width] initializer by input_ids) for the vectors to join");
            if (KeyFor(embedding, slot, table, perEncoder: true) is not { } taken) continue;
            if (embedding.Width(taken) != table.Dims[1])
                return (key, $"its vectors are {embedding.Width(taken)} wide, but the {slot.Component} ({slot.ModelPath}) embeds tokens in {table.Dims[1]}: it was made for another model");
            used = true;
        }
        if (used) return null;
        var encoders = string.Join(", ", tables.Select(t => $"{t.Slot.Component} ({t.Slot.ModelPath}) in {t.Table!.Dims[1]}"));
        return embedding.IsSdxlPair
            ? (embedding.SourceKeys.Values.First(), $"this model's CLIP encoders take neither of its sets ({string.Join(", ", embedding.Vectors.Keys)}): they embed tokens as {encoders}")
            : (embedding.SourceKeys.Values.First(), $"its vectors are {embedding.Width(TextualInversion.Single)} wide, but this model's CLIP encoders embed tokens as {encoders} (T5 takes no embeddings): it was made for another model");
    }

    /// <summary>Adds <paramref name="component"/>'s extended token-embedding table to <paramref name="overrides"/> (nothing when it has none).</summary>
    public void AddTo(InitializerOverrides overrides, string component)
    {
        foreach (var (slot, table, members) in _tables)
        {
            if (slot.Component != component || members.Length == 0) continue;
            using var weights = ModelWeights.Open(slot.ModelPath);
            var original = weights.Read(table);
            var width = (int)table.Dims[1];
            var rows = members.Sum(m => m.Embedding.VectorCount);
            var extended = new float[original.Length + rows * width];
            original.CopyTo(extended, 0);
            var at = original.Length;
            foreach (var (embedding, key) in members)
            {
                embedding.Vectors[key].CopyTo(extended, at);
                at += embedding.VectorCount * width;
            }
            long[] dims = [table.Dims[0] + rows, width];
            if (table.DataType == OnnxGraph.Float16)
            {
                var halves = new Half[extended.Length];
                System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(extended, halves);
                overrides.Add(table.Initializer, System.Runtime.InteropServices.MemoryMarshal.Cast<Half, Microsoft.ML.OnnxRuntime.Float16>(halves).ToArray(), dims);
            }
            else overrides.Add(table.Initializer, extended, dims);
            if (table.ThroughCast) overrides.HasCastWeights = true;
        }
    }
}
