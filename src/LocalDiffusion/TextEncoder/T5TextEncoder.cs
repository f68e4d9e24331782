using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LocalDiffusion.TextEncoder;

/// <summary>The T5 encoder of SD 3 (text_encoder_3) and FLUX (text_encoder_2): token ids [B,L] → last_hidden_state [B,L,D].</summary>
internal sealed class T5TextEncoder : IDisposable
{
    private readonly OnnxComponent _model;
    private readonly TensorSpec _ids;
    private readonly TensorSpec _hidden;

    public T5TextEncoder(OnnxComponent model)
    {
        _model = model;
        if (!model.Inputs.TryGetValue("input_ids", out var ids) || ids.Rank != 2 || ids.ElementType is not (TensorElementType.Int32 or TensorElementType.Int64))
            throw new ModelLoadException(model.FilePath,
                $"this does not look like a T5 encoder: expected input 'input_ids' int32/int64 [batch,sequence]; found {model.DescribeInputs()}.");
        _ids = ids;
        _hidden = model.OutputOrFirst("last_hidden_state");
        if (_hidden.Rank != 3)
            throw new ModelLoadException(model.FilePath, $"expected output 'last_hidden_state' [batch,sequence,hidden]; found {model.DescribeOutputs()}.");
        OrtTensors.RequireFloatOutput(_hidden, model.FilePath);
    }

    /// <summary>The hidden width when declared (4096 for T5-XXL).</summary>
    public int? DeclaredHiddenSize => _hidden.FixedDimension(2) is { } d ? (int)d : null;

    /// <summary>A sequence length the export is fixed to, or null when dynamic.</summary>
    public int? FixedSequenceLength => _ids.FixedDimension(1) is { } d ? (int)d : null;

    /// <summary>Encodes <paramref name="rows"/> rows of <paramref name="length"/> ids: [rows,length,D] and D.</summary>
    public (float[] Hidden, int HiddenSize) Encode(ReadOnlySpan<int> ids, int rows, int length, RunOptions runOptions)
    {
        float[]? result = null;
        var width = 0;
        for (var r = 0; r < rows; r++)
        {
            // One row per call: a static-batch export takes 1, and T5's work grows with the rows anyway.
            using var input = OrtTensors.FromIds(_ids, ids.Slice(r * length, length), [1, length]);
            using var outputs = _model.Run(runOptions, [_ids.Name], [input], [_hidden.Name]);
            var shape = OrtTensors.Shape(outputs[0]);
            width = (int)shape[2];
            result ??= new float[rows * length * width];
            OrtTensors.ReadFloats(outputs[0], result.AsSpan(r * length * width, length * width));
        }
        return (result ?? [], width);
    }

    /// <summary>Holds the session open for a stage of several calls.</summary>
    public OnnxComponent.Lease Use() => _model.Use();

    public void Dispose() => _model.Dispose();
}
