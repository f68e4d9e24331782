using System.Runtime.InteropServices;
using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LocalDiffusion.Families;

/// <summary>
/// The binding of one denoising loop's transformer calls, made after its first call (whose output shape it takes) and
/// released with the loop's conditioning.
/// </summary>
internal sealed class TransformerSlot(float[][] constant) : IDisposable
{
    private TransformerBinding? _binding;
    private bool _unbindable;

    /// <summary>The binding for these inputs, or null (not made yet, or inputs of another shape).</summary>
    public TransformerBinding? For(IReadOnlyList<(string Name, ReadOnlyMemory<float> Values, long[] Shape)> inputs, int outputCount) =>
        _binding is { } b && b.Fits(inputs, outputCount) ? b : null;

    /// <summary>After an unbound call: binds these inputs and the output shape it returned, for the next calls.</summary>
    public void Bind(OnnxComponent model, IReadOnlyList<(string Name, ReadOnlyMemory<float> Values, long[] Shape)> inputs, long[] outputShape)
    {
        if (_unbindable) return;
        _binding?.Dispose();
        _binding = TransformerBinding.TryCreate(model, inputs, outputShape, constant);
        _unbindable = _binding is null;
    }

    public void Dispose() => _binding?.Dispose();
}

/// <summary>
/// A transformer's inputs and output bound to its session for one denoising loop (ONNX Runtime's I/O binding, the GPU
/// path's way to keep tensors in place; the same code runs on the CPU). Every call writes the inputs that change — the
/// latents, the timestep — but the conditioning rows (the prompt's hidden states and pooled vectors, constant over the
/// loop) only once, and reads the prediction from a bound output: no tensor is created per step.
/// </summary>
internal sealed class TransformerBinding : IDisposable
{
    private readonly StepBinding _binding;
    private readonly (string Name, long[] Shape, HostTensor Tensor)[] _inputs;
    private readonly HostTensor _output;
    private readonly float[][] _constant;
    private readonly bool[] _written;

    private TransformerBinding(StepBinding binding, (string, long[], HostTensor)[] inputs, HostTensor output, float[][] constant)
    {
        _binding = binding;
        _inputs = inputs;
        _output = output;
        _constant = constant;
        _written = new bool[inputs.Length];
    }

    /// <summary>
    /// Binds <paramref name="inputs"/> (their names, shapes and the session's dtypes) and an output of
    /// <paramref name="outputShape"/> (what an unbound call returned); <paramref name="constant"/> are the arrays that stay
    /// the same over the loop. Null when a dtype cannot be bound (bfloat16): the calls then stay unbound.
    /// </summary>
    public static TransformerBinding? TryCreate(OnnxComponent model, IReadOnlyList<(string Name, ReadOnlyMemory<float> Values, long[] Shape)> inputs,
        long[] outputShape, float[][] constant)
    {
        var made = new List<IDisposable>();
        try
        {
            var bound = new (string, long[], HostTensor)[inputs.Count];
            var binding = new StepBinding(model);
            made.Add(binding);
            for (var i = 0; i < inputs.Count; i++)
            {
                var (name, _, shape) = inputs[i];
                if (!Bindable(model.Input(name).ElementType)) return Release(made);
                var tensor = HostTensor.Create(model.Input(name).ElementType, shape, name);
                made.Add(tensor);
                binding.BindInput(name, tensor);
                bound[i] = (name, [.. shape], tensor);
            }
            var outputSpec = model.Outputs.Values.First();
            if (!Bindable(outputSpec.ElementType)) return Release(made);
            var output = HostTensor.Create(outputSpec.ElementType, outputShape, outputSpec.Name);
            made.Add(output);
            binding.BindOutput(outputSpec.Name, output.Value);
            return new TransformerBinding(binding, bound, output, constant);
        }
        catch
        {
            Release(made);
            throw;
        }
    }

    /// <summary>Inputs written since the call before the last (bound again before it on a GPU: see <see cref="StepBinding"/>).</summary>
    internal int LastWritten => _binding.LastWritten;

    /// <summary>Whether this binding was made for inputs of these names and shapes.</summary>
    public bool Fits(IReadOnlyList<(string Name, ReadOnlyMemory<float> Values, long[] Shape)> inputs, int outputCount)
    {
        if (inputs.Count != _inputs.Length || outputCount != _output.Length) return false;
        for (var i = 0; i < inputs.Count; i++)
            if (inputs[i].Name != _inputs[i].Name || !inputs[i].Shape.AsSpan().SequenceEqual(_inputs[i].Shape)) return false;
        return true;
    }

    /// <summary>One call: writes what changed, runs, reads the prediction into <paramref name="output"/>.</summary>
    public void Run(IReadOnlyList<(string Name, ReadOnlyMemory<float> Values, long[] Shape)> inputs, Span<float> output, RunOptions runOptions)
    {
        for (var i = 0; i < inputs.Count; i++)
        {
            var values = inputs[i].Values;
            var constant = IsConstant(values);
            if (_written[i] && constant) continue;
            _inputs[i].Tensor.Write(values.Span);
            _written[i] = constant;
        }
        _binding.Run(runOptions);
        _output.Read(0, output);
    }

    // Conditioning arrays are made once per loop and never written again, so their bound copy stays valid.
    private bool IsConstant(ReadOnlyMemory<float> values) =>
        MemoryMarshal.TryGetArray(values, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
        && Array.Exists(_constant, c => ReferenceEquals(c, segment.Array));

    private static bool Bindable(TensorElementType type) => type is TensorElementType.Float or TensorElementType.Float16 or TensorElementType.Double
        or TensorElementType.Int64 or TensorElementType.Int32;

    private static TransformerBinding? Release(List<IDisposable> made)
    {
        for (var i = made.Count - 1; i >= 0; i--) made[i].Dispose();
        return null;
    }

    public void Dispose()
    {
        _binding.Dispose();
        foreach (var (_, _, tensor) in _inputs) tensor.Dispose();
        _output.Dispose();
    }
}
