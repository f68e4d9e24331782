namespace LocalDiffusion.Onnx.Rewriting;

/// <summary>
/// Finds attention written out as torch.onnx exports it (per-head reshapes and transposes of the projected query, key
/// and value; MatMul(q, kᵀ); a scale; Softmax; MatMul with v; heads merged back), whatever the exporter's spelling
/// (torch 1.13's bmm/baddbmm form, torch 2's scaled_dot_product_attention form). From each Softmax: up through scalar
/// Mul/Div to the scores' MatMul, up each of its inputs through Reshape/Transpose/float Cast/scalar scaling to the
/// tensors the branches start from (the query and key projections), the value branch likewise, and down from the
/// weighted sum through Reshape/Transpose to the merged heads. A candidate is only a candidate: whether it computes
/// multi-head attention is checked by running it (<see cref="AttentionFusion"/>).
/// </summary>
internal sealed class AttentionBlocks
{
    private static readonly HashSet<string> PassThrough = ["Reshape", "Transpose"];
    private static readonly HashSet<string> ScalarOps = ["Mul", "Div"];
    private static readonly HashSet<string> ShapeOps =
        ["Shape", "Gather", "Unsqueeze", "Concat", "Constant", "Cast", "Slice", "Squeeze", "Mul", "Div", "Add", "Sub", "ConstantOfShape", "Sqrt", "Reciprocal", "Pow"];

    private readonly OnnxGraph _graph;
    private readonly Dictionary<string, OnnxGraph.Node> _producer = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<OnnxGraph.Node>> _consumers = new(StringComparer.Ordinal);
    private readonly Dictionary<OnnxGraph.Node, int> _order = new(ReferenceEqualityComparer.Instance);

    public AttentionBlocks(OnnxGraph graph)
    {
        _graph = graph;
        for (var i = 0; i < graph.Nodes.Count; i++)
        {
            var node = graph.Nodes[i];
            _order[node] = i;
            foreach (var output in node.Outputs) _producer[output] = node;
            foreach (var input in node.Inputs)
            {
                if (input.Length == 0) continue;
                if (!_consumers.TryGetValue(input, out var list)) _consumers[input] = list = [];
                list.Add(node);
            }
        }
    }

    /// <summary>
    /// One candidate: query/key/value tensors [B,S,hidden] (projection outputs), the merged-heads tensor it produces
    /// (<see cref="Sink"/>), its nodes in graph order, the tensors outside it whose shapes alone it reads, and the
    /// projections' input widths (for feeding those).
    /// </summary>
    public sealed record Block(string Softmax, string Query, string Key, string Value, string Sink, int Heads, float Scale, int Hidden,
        IReadOnlyList<OnnxGraph.Node> Nodes, Projection[] Projections, IReadOnlySet<string> ShapeOnlyInputs)
    {
        /// <summary>Query and key projected from the same tensor: their sequence lengths are one.</summary>
        public bool SelfAttention => Projections[0].Input == Projections[1].Input;
    }

    /// <summary>A Linear layer's input tensor and widths (query, key, value in <see cref="Block.Projections"/>).</summary>
    public readonly record struct Projection(string Input, int InWidth, int OutWidth);

    public List<Block> Find(Action<string> log)
    {
        var blocks = new List<Block>();
        foreach (var softmax in _graph.Nodes.Where(n => n.OpType == "Softmax" && n.Domain.Length == 0))
        {
            if (Candidate(softmax, log) is { } block) blocks.Add(block);
        }
        return blocks;
    }

    private Block? Candidate(OnnxGraph.Node softmax, Action<string> log)
    {
        List<OnnxGraph.Node> scoreChain = [];
        List<double?> scoreScale = [];
        var top = WalkUp(softmax.Inputs[0], scoreChain, scoreScale);
        if (scoreChain.Any(n => PassThrough.Contains(n.OpType))) return null;
        var product = _producer.GetValueOrDefault(top);
        var probabilities = softmax.Outputs[0];
        var users = _consumers.GetValueOrDefault(probabilities) ?? [];
        if (users is [{ OpType: "Cast" } cast] && IsFloatCast(cast))
        {
            probabilities = cast.Outputs[0];
            users = _consumers.GetValueOrDefault(probabilities) ?? [];
        }
        if (product is not { OpType: "MatMul" } || users is not [{ OpType: "MatMul" } weighted] || weighted.Inputs[0] != probabilities)
            return null;
        List<OnnxGraph.Node> qChain = [], kChain = [], vChain = [];
        List<double?> qScale = [], kScale = [];
        var q = WalkUp(product.Inputs[0], qChain, qScale);
        var k = WalkUp(product.Inputs[1], kChain, kScale);
        var v = WalkUp(weighted.Inputs[1], vChain, []);
        var sink = weighted.Outputs[0];
        while (true)
        {
            // Shape readers (reshape targets computed from this tensor's shape) belong to the block.
            var after = (_consumers.GetValueOrDefault(sink) ?? []).Where(n => n.OpType != "Shape").ToList();
            if (after is not [var next] || !PassThrough.Contains(next.OpType) || next.Inputs[0] != sink) break;
            sink = next.Outputs[0];
        }
        var heads = HeadsOf(qChain);
        var (qIn, kIn, vIn) = (ProjectionOf(q), ProjectionOf(k), ProjectionOf(v));
        if (heads is null || sink == weighted.Outputs[0] || q == k || qIn is null || kIn is null || vIn is null)
        {
            log($"{softmax.Name}: not a recognisable multi-head block, left alone");
            return null;
        }
        var hidden = qIn.Value.OutWidth;
        if (heads <= 0 || hidden % heads != 0 || kIn.Value.OutWidth != hidden || vIn.Value.OutWidth != hidden)
        {
            log($"{softmax.Name}: {heads} heads do not divide the projections' widths, left alone");
            return null;
        }
        var factors = scoreScale.Concat(qScale).Concat(kScale).ToList();
        // Constants give the scale; a scale computed from shapes (torch 2's default) is 1/√head_size.
        var scale = factors.Count == 0 ? 1.0
            : factors.Any(f => f is null) ? 1.0 / Math.Sqrt(hidden / heads.Value)
            : factors.Aggregate(1.0, (p, f) => p * f!.Value);
        if (Collect(sink, [q, k, v]) is not { } collected)
        {
            log($"{softmax.Name}: the block reads tensors from elsewhere in the graph, left alone");
            return null;
        }
        Projection[] projections = [qIn.Value, kIn.Value, vIn.Value];
        if (!collected.Outer.All(o => projections.Any(p => p.Input == o)))
        {
            log($"{softmax.Name}: the block reads the shapes of other tensors, left alone");
            return null;
        }
        return new Block(softmax.Name, q, k, v, sink, heads.Value, (float)scale, hidden, collected.Nodes, projections, collected.Outer);
    }

    /// <summary>A tensor's value when it is known without running the graph (a small initializer or a Constant node), else null.</summary>
    private double[]? Constant(string name) => ConstantTensor(name) is { } tensor ? OnnxGraph.Values(tensor) : null;

    // A constant's TensorProto: an initializer, or a Constant node's value; null for anything computed.
    private OnnxGraph.Tensor? ConstantTensor(string name) =>
        _graph.Initializers.TryGetValue(name, out var tensor) ? tensor
        : _producer.GetValueOrDefault(name) is { OpType: "Constant" } node ? ValueAttribute(node) : null;

    // The "value" tensor of a Constant or ConstantOfShape node.
    private static OnnxGraph.Tensor? ValueAttribute(OnnxGraph.Node node) =>
        node.Attributes.GetValueOrDefault("value")?.Tensor is { } t ? OnnxGraph.ReadTensor(t) : null;

    private double? Scalar(string name) => Constant(name) is [var only] ? only : null;

    // The shape of a weight: an initializer or Constant, or one cast to float (models that store float16 weights and
    // compute in float32, as the shapes model does).
    private long[]? ConstantDims(string name) =>
        ConstantTensor(name)?.Dims
        ?? (_producer.GetValueOrDefault(name) is { OpType: "Cast" } cast && IsFloatCast(cast) ? ConstantDims(cast.Inputs[0]) : null);

    // A tensor that is zero whatever the inputs: all-zero constants, x·0, ConstantOfShape(0) (baddbmm's beta = 0 term).
    private bool IsZero(string name)
    {
        if (Constant(name) is { } value) return value.All(v => v == 0);
        var node = _producer.GetValueOrDefault(name);
        if (node is { OpType: "Mul" }) return node.Inputs.Any(i => Scalar(i) == 0.0);
        if (node is { OpType: "ConstantOfShape" })
            return ValueAttribute(node) is not { } fill || OnnxGraph.Values(fill) is { } v && v.All(x => x == 0);
        return false;
    }

    // A value computed from tensor shapes alone (e.g. torch 2's 1/√head_size scale), not from tensor contents.
    private bool ShapeOnly(string name, int depth = 0)
    {
        var node = _producer.GetValueOrDefault(name);
        if (node is null) return Constant(name) is not null;
        if (node.OpType == "Shape") return true;
        if (depth > 12 || !ShapeOps.Contains(node.OpType)) return false;
        return node.Inputs.Where(i => i.Length > 0).All(i => ShapeOnly(i, depth + 1));
    }

    private static bool IsFloatCast(OnnxGraph.Node node) => node.Attributes.GetValueOrDefault("to")?.I == OnnxGraph.Float;

    // From a tensor up through reshapes, transposes, float casts and scalar scaling (a constant factor, or null when
    // computed from shapes) to the tensor a branch starts from.
    private string WalkUp(string name, List<OnnxGraph.Node> nodes, List<double?> scale)
    {
        while (true)
        {
            var node = _producer.GetValueOrDefault(name);
            if (node is null) return name;
            if (PassThrough.Contains(node.OpType) || (node.OpType == "Cast" && IsFloatCast(node)))
            {
                nodes.Add(node);
                name = node.Inputs[0];
            }
            else if (ScalarOps.Contains(node.OpType) && node.Inputs.Length == 2)
            {
                var (s0, s1) = (Scalar(node.Inputs[0]), Scalar(node.Inputs[1]));
                string data;
                if (s1 is not null || ShapeOnly(node.Inputs[1]))
                {
                    scale.Add(s1 is not { } f ? null : node.OpType == "Mul" ? f : 1.0 / f);
                    data = node.Inputs[0];
                }
                else if (node.OpType == "Mul" && (s0 is not null || ShapeOnly(node.Inputs[0])))
                {
                    scale.Add(s0);
                    data = node.Inputs[1];
                }
                else return name;
                nodes.Add(node);
                name = data;
            }
            else if (node.OpType == "Add" && node.Inputs.Length == 2 && (IsZero(node.Inputs[0]) || IsZero(node.Inputs[1])))
            {
                nodes.Add(node);
                name = IsZero(node.Inputs[0]) ? node.Inputs[1] : node.Inputs[0];
            }
            else return name;
        }
    }

    // The head count from the first Reshape above the query: its target's third entry ([B, S, H, D]).
    private int? HeadsOf(List<OnnxGraph.Node> chain)
    {
        for (var i = chain.Count - 1; i >= 0; i--)
        {
            var node = chain[i];
            if (node.OpType != "Reshape") continue;
            if (Constant(node.Inputs[1]) is { Length: 4 } target) return (int)target[2];
            if (_producer.GetValueOrDefault(node.Inputs[1]) is { OpType: "Concat", Inputs.Length: 4 } concat
                && Constant(concat.Inputs[2]) is [var heads])
                return (int)heads; // the head size may be computed (dim // heads); the count is a constant
            return null;
        }
        return null;
    }

    // (input, input width, output width) of a Linear layer's output: MatMul with a 2-D constant weight, plus a bias.
    private Projection? ProjectionOf(string name)
    {
        var node = _producer.GetValueOrDefault(name);
        if (node is { OpType: "Add" })
        {
            var data = node.Inputs.Where(i => ConstantDims(i) is null).ToList();
            if (data.Count != 1) return null;
            node = _producer.GetValueOrDefault(data[0]);
        }
        if (node is not { OpType: "MatMul" } || ConstantDims(node.Inputs[1]) is not [var rows, var columns]) return null;
        // A float16 weight means the block computes in float16, which ONNX Runtime's CPU kernel does not take.
        if (_graph.Initializers.TryGetValue(node.Inputs[1], out var weight) && weight.DataType != OnnxGraph.Float) return null;
        return new Projection(node.Inputs[0], (int)rows, (int)columns);
    }

    // Every node between the sources and the sink (reshape-target computations included), in graph order, and the
    // tensors outside the block whose shapes (only) it reads; null when it reads a graph input other than the sources.
    private (List<OnnxGraph.Node> Nodes, HashSet<string> Outer)? Collect(string sink, HashSet<string> sources)
    {
        var inside = new HashSet<string>(sources, StringComparer.Ordinal);
        var frontier = new Stack<string>(sources);
        while (frontier.Count > 0 && inside.Count < 5000)
        {
            foreach (var node in _consumers.GetValueOrDefault(frontier.Pop()) ?? [])
                foreach (var output in node.Outputs)
                    if (inside.Add(output) && output != sink) frontier.Push(output);
        }
        var needed = new HashSet<OnnxGraph.Node>(ReferenceEqualityComparer.Instance);
        var outer = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>([sink]);
        while (stack.Count > 0)
        {
            var name = stack.Pop();
            if (sources.Contains(name) || !seen.Add(name)) continue;
            var node = _producer.GetValueOrDefault(name);
            if (node is null)
            {
                if (_graph.Initializers.ContainsKey(name)) continue;
                return null;
            }
            if (needed.Count > 500) return null; // walked out of the block into the rest of the graph
            needed.Add(node);
            if (node.OpType == "Shape" && !inside.Contains(node.Inputs[0]))
            {
                outer.Add(node.Inputs[0]); // e.g. reshape(x.shape) with x the block's input: its shape is all that is read
                continue;
            }
            foreach (var input in node.Inputs)
                if (input.Length > 0) stack.Push(input);
        }
        return ([.. needed.OrderBy(n => _order[n])], outer);
    }
}
