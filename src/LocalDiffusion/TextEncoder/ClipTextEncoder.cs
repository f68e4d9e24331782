using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using LocalDiffusion.Tensors;

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
        var outputs = Run(ids, rows, runOptions, [_hidden]);
        return (outputs[0], outputs[0].Length / (rows * SequenceLength));
    }

    /// <summary>
    /// SDXL's conditioning from this encoder: the penultimate hidden state (diffusers' <c>hidden_states[-2]</c>,
    /// [rows,77,D]) and, when <paramref name="pooled"/>, the projected pooled <c>text_embeds</c> [rows,P].
    /// </summary>
    /// <exception cref="ModelLoadException">The export lacks the hidden_states.N or text_embeds outputs.</exception>
    public (float[] Penultimate, int HiddenSize, float[]? Pooled) EncodeForXl(ReadOnlySpan<int> ids, int rows, bool pooled, RunOptions runOptions)
    {
        var (penultimate, textEmbeds) = XlOutputs(pooled);
        var outputs = Run(ids, rows, runOptions, textEmbeds is null ? [penultimate] : [penultimate, textEmbeds]);
        return (outputs[0], outputs[0].Length / (rows * SequenceLength), textEmbeds is null ? null : outputs[1]);
    }

    /// <summary>The outputs SDXL reads: hidden_states.(L−1) of hidden_states.0…L, and text_embeds when asked.</summary>
    public (TensorSpec Penultimate, TensorSpec? TextEmbeds) XlOutputs(bool pooled)
    {
        const string prefix = "hidden_states.";
        var last = _model.Outputs.Keys
            .Select(n => n.StartsWith(prefix, StringComparison.Ordinal) && int.TryParse(n.AsSpan(prefix.Length), out var i) ? i : -1)
            .DefaultIfEmpty(-1).Max();
        if (last < 1)
            throw new ModelLoadException(_model.FilePath,
                $"SDXL conditions on the penultimate hidden state, but this text encoder has no hidden_states.N outputs (export it with output_hidden_states); found {_model.DescribeOutputs()}.");
        TensorSpec? textEmbeds = null;
        if (pooled && !_model.Outputs.TryGetValue("text_embeds", out textEmbeds))
            throw new ModelLoadException(_model.FilePath,
                $"SDXL's second text encoder must output the pooled projection 'text_embeds' [batch,dim]; found {_model.DescribeOutputs()}.");
        return (_model.Outputs[prefix + (last - 1)], textEmbeds);
    }

    // Runs the encoder in the batch sizes it accepts and gathers each requested output as [rows, …] floats.
    private float[][] Run(ReadOnlySpan<int> ids, int rows, RunOptions runOptions, TensorSpec[] wanted)
    {
        var results = new float[wanted.Length][];
        var names = wanted.Select(w => w.Name).ToArray();
        var chunkIds = new int[rows * SequenceLength];
        foreach (var chunk in BatchChunk.Plan(rows, _ids.FixedDimension(0)))
        {
            if (chunkIds.Length < chunk.RunBatch * SequenceLength) chunkIds = new int[chunk.RunBatch * SequenceLength];
            var runIds = chunkIds.AsSpan(0, chunk.RunBatch * SequenceLength);
            chunk.Gather(ids, SequenceLength, runIds);
            using var input = OrtTensors.FromIds(_ids, runIds, [chunk.RunBatch, SequenceLength]);
            using var outputs = _model.Run(runOptions, [_ids.Name], [input], names);
            for (var o = 0; o < wanted.Length; o++)
            {
                OrtTensors.RequireFloatOutput(wanted[o], _model.FilePath);
                var shape = OrtTensors.Shape(outputs[o]);
                var run = new float[TensorShape.ArrayLength(shape)];
                var perRow = run.Length / chunk.RunBatch;
                results[o] ??= new float[rows * perRow];
                OrtTensors.ReadFloats(outputs[o], run);
                chunk.Scatter(run, perRow, results[o]);
            }
        }
        return results;
    }

    /// <summary>Holds the session open for a stage of several calls (see <see cref="OnnxComponent.Use"/>).</summary>
    public OnnxComponent.Lease Use() => _model.Use();

    /// <summary>The component (for replacing its weights with LoRA-merged ones).</summary>
    internal OnnxComponent Component => _model;

    /// <summary>Whether the session is open now (see <see cref="PipelineOptions.LowMemory"/>).</summary>
    public bool IsLoaded => _model.IsLoaded;

    public void Dispose() => _model.Dispose();
}
