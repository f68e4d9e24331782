using System.Buffers;
using System.Collections.Concurrent;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Schedulers;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Families.Flux;

/// <summary>
/// FLUX.1's conditioner and denoiser adapter, as diffusers' FluxPipeline (v0.31.0) does them:
/// <list type="bullet">
/// <item>conditioning: CLIP-L's pooled output, and T5's last hidden state over max_sequence_length tokens;</item>
/// <item>denoiser: the latents packed 2×2 into tokens (<see cref="FluxPacking"/>), img_ids (0, row, col) per token and
/// txt_ids zeros, timestep σ (= t / 1000), dev's guidance scale as an input; no CFG batch;</item>
/// <item>schedule: FLUX's σ ramp linspace(1, 1/n, n), shifted by μ from the image's token count when the scheduler
/// config asks for dynamic shifting (dev).</item>
/// </list>
/// With prompt weighting, T5's states get A1111's emphasis (<see cref="FlowEmphasis"/>); CLIP's pooled output is the
/// markup-free prompt's, unweighted.
/// </summary>
/// <param name="clip">CLIP-L, read for its pooled output.</param>
/// <param name="tokenizer">CLIP-L's tokenizer.</param>
/// <param name="t5">The T5 encoder.</param>
/// <param name="t5Tokenizer">T5's tokenizer.</param>
/// <param name="transformer">The FLUX transformer.</param>
/// <param name="dev">Whether the transformer takes a guidance input (dev).</param>
/// <param name="textLength">The T5 length the export is fixed to (<see cref="FluxTextLength"/>), or null.</param>
internal sealed class FluxModel(OnnxComponent clip, ClipTokenizer tokenizer, T5TextEncoder t5, T5Tokenizer t5Tokenizer,
    OnnxComponent transformer, bool dev, int? textLength = null) : FlowFamilyModel
{
    private readonly TensorSpec _clipIds = clip.Input("input_ids");

    // optimum names CLIP's pooled output pooler_output (text_embeds with a projection); Black Forest Labs' export pooled_embeddings.
    private readonly TensorSpec _pooled = clip.Outputs.TryGetValue("pooler_output", out var p) ? p
        : clip.Outputs.TryGetValue("text_embeds", out var e) ? e
        : clip.Outputs.TryGetValue("pooled_embeddings", out var b) ? b
        : throw new ModelLoadException(clip.FilePath, $"FLUX reads CLIP's pooled output ('pooler_output', or 'pooled_embeddings' in Black Forest Labs' export); found {clip.DescribeOutputs()}.");

    // img_ids depend only on the latent size and txt_ids (zeros) only on the T5 length: made once, read by every step.
    private readonly ConcurrentDictionary<(int H, int W), float[]> _imageIds = new();
    private readonly ConcurrentDictionary<int, float[]> _textIds = new();

    public override string Name => dev ? "FLUX.1-dev" : "FLUX.1-schnell";

    public override GuidanceMode Guidance => dev ? GuidanceMode.Embedded : GuidanceMode.None;

    /// <inheritdoc/>
    /// <remarks>
    /// Measured on tiny-flux-dev and -schnell: a request's latents in a batch of two differ from its latents alone in the last
    /// bits (4e-7 at latent scale ~3): ONNX Runtime's kernels for the joint attention over text and image tokens do not
    /// reduce in the same order for another row count. So FLUX requests run alone, and each gets exactly its own result.
    /// </remarks>
    public override bool BatchesExactly => false;

    /// <inheritdoc/>
    public override void Validate(GenerationRequest r)
    {
        base.Validate(r);
        if (textLength is { } length && r.MaxSequenceLength is { } asked && asked != length)
            throw new InvalidRequestException(nameof(r.MaxSequenceLength), asked, null,
                called => $"{called} is {asked}; this {Name} export takes exactly {length} T5 tokens (a static length in {transformer.FilePath}): leave it unset or set {length}.");
    }

    public override FamilyConditioning Encode(IReadOnlyList<FlowPrompt> prompts, int maxSequenceLength, RunOptions runOptions)
    {
        var rows = prompts.Count;
        // CLIP gives FLUX only its pooled output, which stays unweighted: its weights are not needed.
        var (ids, _) = FlowEmphasis.ClipRows(tokenizer, prompts, EmbeddingsFor(clip.Name));
        float[]? pooled = null;
        var pooledWidth = 0;
        for (var r = 0; r < rows; r++)
        {
            using var input = OrtTensors.FromIds(_clipIds, ids.AsSpan(r * tokenizer.MaxLength, tokenizer.MaxLength), [1, tokenizer.MaxLength]);
            using var outputs = clip.Run(runOptions, [_clipIds.Name], [input], [_pooled.Name]);
            pooledWidth = (int)OrtTensors.Shape(outputs[0])[1];
            pooled ??= new float[rows * pooledWidth];
            OrtTensors.ReadFloats(outputs[0], pooled.AsSpan(r * pooledWidth, pooledWidth));
        }
        var (idsT5, weights) = FlowEmphasis.T5Rows(t5Tokenizer, prompts, maxSequenceLength);
        var (hidden, width) = t5.Encode(idsT5, rows, maxSequenceLength, runOptions);
        FlowEmphasis.Apply(hidden, maxSequenceLength, width, weights, prompts);
        return new FamilyConditioning(hidden, maxSequenceLength, width, pooled!, pooledWidth, rows);
    }

    public override void Predict(ReadOnlyMemory<float> latents, int rows, int latentHeight, int latentWidth, float timestep, float guidance,
        FamilyConditioning conditioning, Span<float> output, RunOptions runOptions)
    {
        var tokens = latentHeight / 2 * (latentWidth / 2);
        var width = Latents.Channels * 4;
        var count = rows * tokens * width;
        // Called every step: the packed buffers (a megabyte a row at 1024²) come from the pool, the position ids from a
        // per-size cache, so the loop leaves no large garbage behind.
        var packed = ArrayPool<float>.Shared.Rent(count);
        var prediction = ArrayPool<float>.Shared.Rent(count);
        try
        {
            FluxPacking.Pack(latents.Span, rows, Latents.Channels, latentHeight, latentWidth, packed);
            // diffusers passes timestep / 1000 (σ) and the guidance scale for every row.
            var sigma = new float[rows];
            Array.Fill(sigma, timestep / 1000f);
            List<(string, ReadOnlyMemory<float>, long[])> inputs =
            [
                ("hidden_states", packed.AsMemory(0, count), [rows, tokens, width]),
                ("timestep", sigma, [rows]),
                ("encoder_hidden_states", conditioning.Hidden, [rows, conditioning.SequenceLength, conditioning.Width]),
                ("pooled_projections", conditioning.Pooled, [rows, conditioning.PooledWidth]),
                ("img_ids", _imageIds.GetOrAdd((latentHeight, latentWidth), k => FluxPacking.ImageIds(k.H, k.W)), [tokens, 3]),
                ("txt_ids", _textIds.GetOrAdd(conditioning.SequenceLength, length => new float[length * 3]), [conditioning.SequenceLength, 3]),
            ];
            if (dev)
            {
                var scale = new float[rows];
                Array.Fill(scale, guidance);
                inputs.Add(("guidance", scale, [rows]));
            }
            TransformerCall.Run(transformer, runOptions, inputs, prediction.AsSpan(0, count), conditioning);
            FluxPacking.Unpack(prediction.AsSpan(0, count), rows, Latents.Channels, latentHeight, latentWidth, output);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(packed);
            ArrayPool<float>.Shared.Return(prediction);
        }
    }

    public override void SetTimesteps(IFlowMatchScheduler scheduler, int steps, int latentHeight, int latentWidth)
    {
        if (scheduler is not FlowMatchEulerDiscreteScheduler euler)
            throw new InvalidRequestException(nameof(GenerationRequest.Scheduler), null, null, "FLUX runs FlowMatchEulerDiscreteScheduler (flow_euler): its σ ramp and μ shift are that scheduler's.");
        var tokens = latentHeight / 2 * (latentWidth / 2);
        euler.SetSigmas(FlowMatchEulerDiscreteScheduler.FluxSigmas(steps), euler.UseDynamicShifting ? euler.MuFor(tokens) : null);
    }
}
