using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LocalDiffusion.TextEncoder;

/// <summary>The CLIP text encoder: token ids [B,77] → hidden states [B,77,D] that condition the UNet.</summary>
internal sealed class ClipTextEncoder : IDisposable
{
    private readonly OnnxComponent _model;
    private readonly TensorSpec _ids;
    private readonly TensorSpec _hidden;

    public ClipTextEncoder(OnnxComponent model)
    {
        _model = model;
        if (!model.Inputs.TryGetValue("input_ids", out var ids) || ids.Rank != 2
            || ids.ElementType is not (TensorElementType.Int32 or TensorElementType.Int64))
            throw new ModelLoadException(model.FilePath,
                $"this does not look like a CLIP text encoder: expected input 'input_ids' int32/int64 [batch,77]; found {model.DescribeInputs()}.");
        _ids = ids;
        _hidden = model.OutputOrFirst("last_hidden_state");
        if (_hidden.Rank != 3)
            throw new ModelLoadException(model.FilePath,
                $"expected output 'last_hidden_state' [batch,77,hidden]; found {model.DescribeOutputs()}.");
        OrtTensors.RequireFloatOutput(_hidden, model.FilePath);
        SequenceLength = (int)(ids.FixedDimension(1) ?? 77);
    }

    /// <summary>Token positions the encoder takes (77 for CLIP).</summary>
    public int SequenceLength { get; }

    /// <summary>Hidden size when the model declares it statically (768 for SD 1.x), else null.</summary>
    public int? DeclaredHiddenSize => _hidden.FixedDimension(2) is { } d ? (int)d : null;

    public TensorSpec IdsSpec => _ids;

    public TensorSpec HiddenSpec => _hidden;

    /// <summary>Encodes <paramref name="rows"/> prompts of <see cref="SequenceLength"/> ids each; returns [rows,77,D] and D.</summary>
    public (float[] Hidden, int HiddenSize) Encode(ReadOnlySpan<int> ids, int rows, RunOptions runOptions)
    {
        float[]? result = null;
        var hiddenSize = 0;
        var chunkIds = new int[rows * SequenceLength];
        foreach (var chunk in BatchChunk.Plan(rows, _ids.FixedDimension(0)))
        {
            if (chunkIds.Length < chunk.RunBatch * SequenceLength) chunkIds = new int[chunk.RunBatch * SequenceLength];
            var runIds = chunkIds.AsSpan(0, chunk.RunBatch * SequenceLength);
            chunk.Gather(ids, SequenceLength, runIds);
            using var input = OrtTensors.FromIds(_ids, runIds, [chunk.RunBatch, SequenceLength]);
            using var outputs = _model.Run(runOptions, [_ids.Name], [input], [_hidden.Name]);
            var shape = OrtTensors.Shape(outputs[0]);
            hiddenSize = (int)shape[2];
            result ??= new float[rows * SequenceLength * hiddenSize];
            var run = new float[OrtTensors.Count(shape)];
            OrtTensors.ReadFloats(outputs[0], run);
            chunk.Scatter(run, SequenceLength * hiddenSize, result);
        }
        return (result!, hiddenSize);
    }

    public void Dispose() => _model.Dispose();
}
