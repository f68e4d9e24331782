using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Adapters;

/// <summary>
/// LoRA-merged Conv filters in the blocked layout of one cached optimised graph, under that graph's names for them
/// (<c>reorder_token_N</c>), made by <see cref="CachedConvWeights.TryMap"/>. Owned by the
/// <see cref="InitializerOverrides"/> they were made from; each value is an <see cref="OrtValue"/> over a pinned array
/// that backs the sessions opened with it, so it is disposed only with those overrides.
/// </summary>
internal sealed class CachedConvForm : IDisposable
{
    private readonly HashSet<string> _replaced = new(StringComparer.Ordinal);
    private readonly List<(string Name, OrtValue Value)> _values = [];

    /// <summary>The cached graph's filter <paramref name="cachedName"/>, holding the merged <paramref name="source"/> reordered.</summary>
    public void Add(string source, string cachedName, float[] blocked, long[] dims)
    {
        _replaced.Add(source);
        _values.Add((cachedName, OrtValue.CreateTensorValueFromMemory(blocked, dims)));
    }

    /// <summary>How many filters are reordered.</summary>
    public int Count => _values.Count;

    /// <summary>The cached graph's name for each reordered filter.</summary>
    public IEnumerable<string> Names => _values.Select(v => v.Name);

    /// <summary>Each reordered filter under the cached graph's name (for a weights-only rewrite).</summary>
    public IEnumerable<(string Name, OrtValue Value)> Entries => _values;

    /// <summary>Whether the model's weight <paramref name="name"/> is handed over reordered (and so not under its own name).</summary>
    public bool Replaces(string name) => _replaced.Contains(name);

    /// <summary>The reordered values handed as <paramref name="cachedName"/> (for checks).</summary>
    public float[] Values(string cachedName) => _values.First(v => v.Name == cachedName).Value.GetTensorDataAsSpan<float>().ToArray();

    /// <summary>Registers the reordered filters with <paramref name="options"/>.</summary>
    public void ApplyTo(SessionOptions options)
    {
        foreach (var (name, value) in _values) options.AddInitializer(name, value);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var (_, value) in _values) value.Dispose();
        _values.Clear();
        _replaced.Clear();
    }
}
