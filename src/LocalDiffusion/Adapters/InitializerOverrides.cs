using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Adapters;

/// <summary>
/// Weights to use in place of a model's own initializers (LoRA-merged), handed to ONNX Runtime through
/// <see cref="SessionOptions.AddInitializer"/>: each is an <see cref="OrtValue"/> over a pinned array that must stay
/// alive as long as any session created with it, so the owner disposes this only after those sessions.
/// </summary>
internal sealed class InitializerOverrides : IDisposable
{
    private readonly List<(string Name, OrtValue Value, long[] Dims, bool Conv)> _values = [];
    private (string Key, CachedConvForm? Form)? _cachedForm;

    /// <param name="identity">What the weights came from (the LoRA set), compared to decide whether a session can be kept.</param>
    public InitializerOverrides(string identity) => Identity = identity;

    /// <summary>The LoRA set the weights were merged from.</summary>
    public string Identity { get; }

    /// <summary>
    /// Whether a Conv weight is among them. ONNX Runtime's "all"-level optimiser (its NCHWc conv layout) reads Conv
    /// weights from the model, ignoring AddInitializer (measured with ONNX Runtime 1.31: the output did not change), so
    /// such a session is optimised at the "extended" level, where the override is used — unless the optimised-model
    /// cache's graph takes them in its reordered layout (<see cref="CachedConvWeights"/>).
    /// </summary>
    public bool HasConvWeights { get; set; }

    /// <summary>
    /// Whether a weight reaches its node through a Cast (float16 exports). ONNX Runtime's constant folding (already at the
    /// "basic" level) folds Cast(initializer) from the model's own data, ignoring AddInitializer (measured with 1.31 on
    /// tiny-fp16: the LoRA changed nothing), so such a session is not graph-optimised at all.
    /// </summary>
    public bool HasCastWeights { get; set; }

    /// <summary>The highest optimisation level at which ONNX Runtime still uses every replaced weight.</summary>
    public Microsoft.ML.OnnxRuntime.GraphOptimizationLevel Level =>
        HasCastWeights ? Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        : HasConvWeights ? Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        : Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Initializer names.</summary>
    public IEnumerable<string> Names => _values.Select(v => v.Name);

    /// <summary>How many weights are replaced.</summary>
    public int Count => _values.Count;

    /// <summary>Each replaced initializer's name and dimensions (to check a graph still has them).</summary>
    public IEnumerable<(string Name, long[] Dims)> Shapes => _values.Select(v => (v.Name, v.Dims));

    /// <summary>Each replaced weight, and whether it is a Conv filter (in torch's <c>[out, in, kh, kw]</c> layout).</summary>
    public IEnumerable<(string Name, long[] Dims, bool Conv)> Entries => _values.Select(v => (v.Name, v.Dims, v.Conv));

    /// <param name="name">The initializer.</param>
    /// <param name="values">Its values, pinned until disposal.</param>
    /// <param name="dims">Its dimensions.</param>
    /// <param name="conv">Whether it is a Conv filter (which the cached graph may hold reordered).</param>
    public void Add(string name, float[] values, long[] dims, bool conv = false) => _values.Add((name, OrtValue.CreateTensorValueFromMemory(values, dims), dims, conv));

    public void Add(string name, Float16[] values, long[] dims) => _values.Add((name, OrtValue.CreateTensorValueFromMemory(values, dims), dims, false));

    /// <summary>The float32 values that replace <paramref name="name"/> (for checks).</summary>
    public float[] Float32Values(string name) => Float32Span(name).ToArray();

    /// <summary>The float32 values that replace <paramref name="name"/>, without a copy.</summary>
    public ReadOnlySpan<float> Float32Span(string name) => _values.First(v => v.Name == name).Value.GetTensorDataAsSpan<float>();

    /// <summary>The bytes of the values that replace <paramref name="name"/>, as stored (for a weights-only rewrite).</summary>
    public Span<byte> RawBytes(string name) => _values.First(v => v.Name == name).Value.GetTensorMutableRawData();

    /// <summary>
    /// The Conv filters in the layout of the cached graph identified by <paramref name="key"/>, made by
    /// <paramref name="map"/> the first time that graph is asked for (null: they do not fit it; also remembered) and kept
    /// with these weights, so that reopening a session (every stage under low memory) does not map them again. A form made
    /// for another key (the cache entry was rebuilt) is disposed here: the owner opens one session at a time, so none made
    /// with it is still open.
    /// </summary>
    public CachedConvForm? CachedFormFor(string key, Func<CachedConvForm?> map)
    {
        if (_cachedForm is { } known && known.Key == key) return known.Form;
        _cachedForm?.Form?.Dispose();
        _cachedForm = null;
        var form = map();
        _cachedForm = (key, form);
        return form;
    }

    /// <summary>
    /// Registers every weight with <paramref name="options"/>; with <paramref name="form"/> (opening the cached graph) its
    /// reordered filters take the place of the Conv weights they were made from.
    /// </summary>
    public void ApplyTo(SessionOptions options, CachedConvForm? form = null)
    {
        foreach (var (name, value, _, _) in _values)
            if (form is null || !form.Replaces(name)) options.AddInitializer(name, value);
        form?.ApplyTo(options);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var (_, value, _, _) in _values) value.Dispose();
        _values.Clear();
        _cachedForm?.Form?.Dispose();
        _cachedForm = null;
    }
}
