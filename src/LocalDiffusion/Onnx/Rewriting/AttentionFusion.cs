using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LocalDiffusion.Onnx.Rewriting;

/// <summary>
/// Rewrites a model's written-out attention blocks (<see cref="AttentionBlocks"/>) into ONNX Runtime's contrib
/// <c>com.microsoft.MultiHeadAttention</c>, which computes the same thing without materialising the scores: a
/// flash-attention kernel on the CPU, fused kernels on CUDA. At 512×512 an SD-1.5 UNet's first self-attentions write
/// 2 images × 8 heads × 4096² float scores (1 GiB) per call; fused, its steps ran 25 % faster, its first call lost its
/// 2–3× tax and its peak memory fell by 3 GB (benchmarks/README.md). The engine applies it when it opens a model
/// (and so when it stores the optimised-model cache), as tools/fuse_attention.py does once on a folder.
/// Each candidate is checked before it is replaced: the block's own nodes and a MultiHeadAttention node run side by
/// side in ONNX Runtime on random inputs of two sizes, and only a block whose output agrees (as plain multi-head
/// attention at the scale its constants give) is fused; a masked or rearranged attention is left as it is.
/// </summary>
internal static class AttentionFusion
{
    /// <summary>Changes whenever the rewrite does, so optimised-model cache entries made by another version are not reused.</summary>
    public const string Version = "mha-1";

    private const string Domain = "com.microsoft";
    private const string CheckOutput = "localdiffusion_check_mha";
    private const long MaxEmbeddedBytes = 1L << 30;

    /// <summary>The rewritten model, how many blocks were fused and how many candidates were found.</summary>
    public sealed record Result(byte[] Model, int Fused, int Candidates);

    /// <summary>
    /// The model at <paramref name="modelPath"/> with its attention fused, or null when nothing could be (no candidate,
    /// none that checked out, or a file the rewrite cannot read: ONNX Runtime then opens the file as it is).
    /// </summary>
    public static Result? TryFuse(string modelPath, Action<string>? log = null)
    {
        log ??= _ => { };
        // Weights in external data stay in their files; a model with embedded weights is read whole. Over 1 GB that is
        // a float16 UNet (a float32 one is over protobuf's 2 GB and so external), whose attention the CPU kernel cannot take.
        if (new FileInfo(modelPath).Length > MaxEmbeddedBytes) return null;
        var bytes = File.ReadAllBytes(modelPath);
        OnnxGraph graph;
        try
        {
            graph = OnnxGraph.Parse(bytes);
        }
        catch (InvalidDataException)
        {
            return null;
        }
        if (!graph.Nodes.Any(n => n.OpType == "Softmax")) return null;
        var candidates = new AttentionBlocks(graph).Find(log);
        var fused = candidates.Where(b => Agrees(graph, b, log)).ToList();
        if (fused.Count == 0) return null;
        return new Result(Rewrite(graph, fused), fused.Count, candidates.Count);
    }

    private static ReadOnlyMemory<byte> FusedNode(AttentionBlocks.Block block, string output) =>
        OnnxGraph.EncodeNode([block.Query, block.Key, block.Value], [output], $"{(block.Softmax.Length > 0 ? block.Softmax : block.Sink)}/MultiHeadAttention", "MultiHeadAttention", Domain,
            [("num_heads", block.Heads, null), ("scale", null, block.Scale)]);

    private static IEnumerable<(string, long)> ExtraOpsets(OnnxGraph graph) =>
        graph.Opsets.Any(o => o.Domain == Domain) ? [] : [(Domain, 1L)];

    // The fused node takes the place of the block's last node; nodes left without consumers (the rest of the block)
    // are removed, and the initializers only they read.
    private static byte[] Rewrite(OnnxGraph graph, List<AttentionBlocks.Block> blocks)
    {
        var bySink = blocks.ToDictionary(b => b.Sink, StringComparer.Ordinal);
        var nodes = new List<(ReadOnlyMemory<byte> Raw, string[] Inputs, string[] Outputs)>(graph.Nodes.Count);
        foreach (var node in graph.Nodes)
        {
            if (node.Outputs.Length > 0 && bySink.TryGetValue(node.Outputs[0], out var block))
                nodes.Add((FusedNode(block, block.Sink), [block.Query, block.Key, block.Value], [block.Sink]));
            else
                nodes.Add((node.Raw, node.Inputs, node.Outputs));
        }
        HashSet<string> used;
        while (true)
        {
            used = new HashSet<string>(graph.Outputs, StringComparer.Ordinal);
            foreach (var node in nodes) used.UnionWith(node.Inputs);
            var kept = nodes.Where(n => n.Outputs.Any(used.Contains)).ToList();
            if (kept.Count == nodes.Count) break;
            nodes = kept;
        }
        return graph.Write(nodes.Select(n => n.Raw).ToList(), used, ExtraOpsets(graph));
    }

    // Runs the block and a MultiHeadAttention node on the same random query, key and value, at two sizes so that a block
    // whose reshapes hard-code one size is not taken for a general one.
    internal static bool Agrees(OnnxGraph graph, AttentionBlocks.Block block, Action<string> log)
    {
        var initializers = new List<OnnxGraph.Tensor>();
        foreach (var name in block.Nodes.SelectMany(n => n.Inputs).Distinct(StringComparer.Ordinal))
        {
            if (!graph.Initializers.TryGetValue(name, out var tensor)) continue;
            if (tensor.External)
            {
                log($"{block.Softmax}: the block reads weights from an external file, left alone");
                return false;
            }
            initializers.Add(tensor);
        }
        var inputs = new List<string> { block.Query, block.Key, block.Value };
        inputs.AddRange(block.ShapeOnlyInputs.Where(i => !inputs.Contains(i)));
        var model = graph.Subgraph(block.Nodes.Select(n => n.Raw).Append(FusedNode(block, CheckOutput)), initializers, inputs, 3,
            [block.Sink, CheckOutput], ExtraOpsets(graph));
        try
        {
            using var options = new SessionOptions { IntraOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
            using var session = new InferenceSession(model, options);
            var random = new Random(12345);
            foreach (var (batch, length, otherLength) in new[] { (2, 6, 5), (1, 9, 3) })
            {
                var keyLength = block.SelfAttention ? length : otherLength;
                var feeds = new List<OrtValue>();
                try
                {
                    foreach (var name in inputs)
                    {
                        var (rows, width) = name == block.Query ? (length, block.Hidden)
                            : name == block.Key || name == block.Value ? (keyLength, block.Hidden)
                            : (name == block.Projections[0].Input ? length : keyLength, block.Projections.First(p => p.Input == name).InWidth);
                        var values = new float[batch * rows * width];
                        // Tensors whose shape alone the block reads are zeros; q, k and v uniform in [-1, 1).
                        if (!block.ShapeOnlyInputs.Contains(name))
                            for (var i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
                        feeds.Add(OrtValue.CreateTensorValueFromMemory(values, [batch, rows, width]));
                    }
                    using var runOptions = new RunOptions();
                    using var outputs = session.Run(runOptions, inputs, feeds, [block.Sink, CheckOutput]);
                    if (!Close(outputs[0], outputs[1]))
                    {
                        log($"{block.Softmax}: the block is not plain multi-head attention (masked or rearranged), left alone");
                        return false;
                    }
                }
                finally
                {
                    foreach (var feed in feeds) feed.Dispose();
                }
            }
            return true;
        }
        catch (OnnxRuntimeException e)
        {
            log($"{block.Softmax}: could not run the block on its own ({e.Message.Trim()}), left alone");
            return false;
        }
    }

    // Agreement as numpy.allclose(rtol 1e-4, atol 1e-5): the fused kernel sums the softmax in another order.
    private static bool Close(OrtValue block, OrtValue fused)
    {
        var (a, b) = (block.GetTensorTypeAndShape(), fused.GetTensorTypeAndShape());
        if (a.ElementDataType != TensorElementType.Float || b.ElementDataType != TensorElementType.Float || !a.Shape.SequenceEqual(b.Shape)) return false;
        var x = block.GetTensorDataAsSpan<float>();
        var y = fused.GetTensorDataAsSpan<float>();
        for (var i = 0; i < x.Length; i++)
            if (!(MathF.Abs(x[i] - y[i]) <= 1e-5f + 1e-4f * MathF.Abs(y[i]))) return false;
        return true;
    }
}
