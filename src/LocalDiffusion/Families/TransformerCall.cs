using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.Families;

/// <summary>
/// One call of a transformer denoiser with named float inputs (each cast to the dtype the session declares), reading its
/// first output. The families' denoiser adapters build the inputs; this runs them — bound to the session from the
/// second call of a loop on (<see cref="TransformerSlot"/> in the conditioning), unbound otherwise.
/// </summary>
internal static class TransformerCall
{
    public static void Run(OnnxComponent model, RunOptions runOptions, IReadOnlyList<(string Name, ReadOnlyMemory<float> Values, long[] Shape)> inputs, Span<float> output,
        FamilyConditioning? conditioning = null)
    {
        var slot = conditioning?.Slot;
        if (slot?.For(inputs, output.Length) is { } binding)
        {
            binding.Run(inputs, output, runOptions);
            return;
        }
        var values = new List<OrtValue>(inputs.Count);
        try
        {
            foreach (var (name, data, shape) in inputs) values.Add(OrtTensors.FromFloats(model.Input(name), data.Span, shape));
            var outputName = model.Outputs.Keys.First();
            using var outputs = model.Run(runOptions, [.. inputs.Select(i => i.Name)], values, [outputName]);
            var count = TensorShape.Count(OrtTensors.Shape(outputs[0]));
            if (count != output.Length)
                throw new ModelLoadException(model.FilePath,
                    $"the transformer returned [{string.Join(",", OrtTensors.Shape(outputs[0]))}] ({count} values); {output.Length} were expected.");
            OrtTensors.ReadFloats(outputs[0], output);
            slot?.Bind(model, inputs, OrtTensors.Shape(outputs[0]));
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }
}
