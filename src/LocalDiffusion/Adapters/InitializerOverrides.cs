using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Adapters;

/// <summary>
/// Weights to use in place of a model's own initializers (LoRA-merged), handed to ONNX Runtime through
/// <see cref="SessionOptions.AddInitializer"/>: each is an <see cref="OrtValue"/> over a pinned array that must stay
/// alive as long as any session created with it, so the owner disposes this only after those sessions.
/// </summary>
internal sealed class InitializerOverrides : IDisposable
{
    private readonly List<(string Name, OrtValue Value, long[] Dims)> _values = [];

    /// <param name="identity">What the weights came from (the LoRA set), compared to decide whether a session can be kept.</param>
    public InitializerOverrides(string identity) => Identity = identity;

    /// <summary>The LoRA set the weights were merged from.</summary>
    public string Identity { get; }

    /// <summary>
    /// Whether a Conv weight is among them. ONNX Runtime's "all"-level optimiser (its NCHWc conv layout) reads Conv
    /// weights from the model, ignoring AddInitializer (measured with ONNX Runtime 1.31: the output did not change), so
    /// such a session is optimised at the "extended" level, where the override is used.
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

    public void Add(string name, float[] values, long[] dims) => _values.Add((name, OrtValue.CreateTensorValueFromMemory(values, dims), dims));

    public void Add(string name, Float16[] values, long[] dims) => _values.Add((name, OrtValue.CreateTensorValueFromMemory(values, dims), dims));

    /// <summary>The float32 values that replace <paramref name="name"/> (for checks).</summary>
    public float[] Float32Values(string name) => _values.First(v => v.Name == name).Value.GetTensorDataAsSpan<float>().ToArray();

    /// <summary>Registers every weight with <paramref name="options"/>.</summary>
    public void ApplyTo(SessionOptions options)
    {
        foreach (var (name, value, _) in _values) options.AddInitializer(name, value);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var (_, value, _) in _values) value.Dispose();
        _values.Clear();
    }
}
