using System.Buffers.Binary;
using LocalDiffusion.Tensors;
using static LocalDiffusion.Onnx.Rewriting.OnnxFields;

namespace LocalDiffusion.Onnx.Rewriting;

/// <summary>
/// An .onnx model's main graph, read from its protobuf for rewriting: nodes with their inputs, outputs and the
/// attributes rewrites look at; initializers with their shapes (weights stay where they are: raw bytes in memory, or
/// external-data files that are never opened); everything else kept as raw fields and written back unchanged.
/// Field numbers are onnx.proto's (<see cref="OnnxFields"/>).
/// </summary>
internal sealed class OnnxGraph
{
    /// <summary>onnx.TensorProto.DataType values the rewrites read.</summary>
    public const int Float = 1, Int32 = 6, Int64 = 7, Float16 = 10, Double = 11;

    private readonly List<(int Field, ReadOnlyMemory<byte> Raw)> _modelFields = [];
    // The graph's fields in file order; an initializer's carries its tensor name, so that Write can leave unused ones out.
    private readonly List<(int Field, ReadOnlyMemory<byte> Raw, string? Initializer)> _graphFields = [];

    private OnnxGraph() { }

    public long IrVersion { get; private set; }

    /// <summary>The model's operator sets (domain "" is the default ONNX domain).</summary>
    public List<(string Domain, long Version)> Opsets { get; } = [];

    public List<Node> Nodes { get; } = [];

    public Dictionary<string, Tensor> Initializers { get; } = new(StringComparer.Ordinal);

    public List<string> Outputs { get; } = [];

    /// <summary>The graph's declared inputs (older exports also list their initializers here).</summary>
    public List<string> Inputs { get; } = [];

    /// <summary>One node: its raw bytes (written back as they were unless replaced) and what rewrites read.</summary>
    public sealed record Node(ReadOnlyMemory<byte> Raw, string Name, string OpType, string Domain, string[] Inputs, string[] Outputs,
        IReadOnlyDictionary<string, Attribute> Attributes);

    /// <summary>An attribute's integer or tensor value (the kinds the rewrites read: Cast's "to", Constant's "value").</summary>
    public sealed record Attribute(string Name, long? I, ReadOnlyMemory<byte>? Tensor);

    /// <summary>A TensorProto: its raw bytes, shape, type, and whether its data lives in an external file.</summary>
    public sealed record Tensor(ReadOnlyMemory<byte> Raw, string Name, long[] Dims, int DataType, bool External);

    public static OnnxGraph Parse(ReadOnlyMemory<byte> model)
    {
        var graph = new OnnxGraph();
        var reader = new ProtoReader(model);
        while (reader.More)
        {
            var start = reader.Position;
            var (field, wire) = reader.Tag();
            if (field == ModelGraph && wire == ProtoReader.LengthDelimited) graph.ReadGraph(reader.ReadBytes());
            else if (field == ModelIrVersion && wire == ProtoReader.Varint) graph.IrVersion = (long)reader.ReadVarint();
            else if (field == ModelOpsetImport && wire == ProtoReader.LengthDelimited) graph.Opsets.Add(ReadOpset(reader.ReadBytes()));
            else reader.Skip(wire);
            graph._modelFields.Add((field, reader.Since(start)));
        }
        return graph;
    }

    private static (string, long) ReadOpset(ReadOnlyMemory<byte> bytes)
    {
        var reader = new ProtoReader(bytes);
        string domain = "";
        long version = 0;
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            if (field == OpsetDomain && wire == ProtoReader.LengthDelimited) domain = reader.ReadString();
            else if (field == OpsetVersion && wire == ProtoReader.Varint) version = (long)reader.ReadVarint();
            else reader.Skip(wire);
        }
        return (domain, version);
    }

    private void ReadGraph(ReadOnlyMemory<byte> bytes)
    {
        var reader = new ProtoReader(bytes);
        while (reader.More)
        {
            var start = reader.Position;
            var (field, wire) = reader.Tag();
            string? initializer = null;
            if (field == GraphNode && wire == ProtoReader.LengthDelimited)
            {
                var raw = reader.ReadBytes();
                Nodes.Add(ReadNode(raw));
            }
            else if (field == GraphInitializer && wire == ProtoReader.LengthDelimited)
            {
                var tensor = ReadTensor(reader.ReadBytes());
                Initializers[tensor.Name] = tensor;
                initializer = tensor.Name;
            }
            else if (field == GraphOutput && wire == ProtoReader.LengthDelimited) Outputs.Add(ReadValueInfoName(reader.ReadBytes()));
            else if (field == GraphInput && wire == ProtoReader.LengthDelimited) Inputs.Add(ReadValueInfoName(reader.ReadBytes()));
            else reader.Skip(wire);
            _graphFields.Add((field, reader.Since(start), initializer));
        }
    }

    private static Node ReadNode(ReadOnlyMemory<byte> raw)
    {
        var reader = new ProtoReader(raw);
        List<string> inputs = [], outputs = [];
        string name = "", opType = "", domain = "";
        var attributes = new Dictionary<string, Attribute>(StringComparer.Ordinal);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case NodeInput when wire == ProtoReader.LengthDelimited: inputs.Add(reader.ReadString()); break;
                case NodeOutput when wire == ProtoReader.LengthDelimited: outputs.Add(reader.ReadString()); break;
                case NodeName when wire == ProtoReader.LengthDelimited: name = reader.ReadString(); break;
                case NodeOpType when wire == ProtoReader.LengthDelimited: opType = reader.ReadString(); break;
                case NodeDomain when wire == ProtoReader.LengthDelimited: domain = reader.ReadString(); break;
                case NodeAttribute when wire == ProtoReader.LengthDelimited:
                    var attribute = ReadAttribute(reader.ReadBytes());
                    attributes[attribute.Name] = attribute;
                    break;
                default: reader.Skip(wire); break;
            }
        }
        return new Node(raw, name, opType, domain, [.. inputs], [.. outputs], attributes);
    }

    private static Attribute ReadAttribute(ReadOnlyMemory<byte> bytes)
    {
        var reader = new ProtoReader(bytes);
        string name = "";
        long? i = null;
        ReadOnlyMemory<byte>? tensor = null;
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            if (field == AttributeName && wire == ProtoReader.LengthDelimited) name = reader.ReadString();
            else if (field == AttributeI && wire == ProtoReader.Varint) i = (long)reader.ReadVarint();
            else if (field == AttributeT && wire == ProtoReader.LengthDelimited) tensor = reader.ReadBytes();
            else reader.Skip(wire);
        }
        return new Attribute(name, i, tensor);
    }

    public static Tensor ReadTensor(ReadOnlyMemory<byte> raw)
    {
        var reader = new ProtoReader(raw);
        var dims = new List<long>();
        string name = "";
        int dataType = 0;
        var external = false;
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            if (field == TensorDims && wire is ProtoReader.Varint or ProtoReader.LengthDelimited) reader.ReadVarints(wire, dims);
            else if (field == TensorDataType && wire == ProtoReader.Varint) dataType = (int)reader.ReadVarint();
            else if (field == TensorName && wire == ProtoReader.LengthDelimited) name = reader.ReadString();
            else if (field == TensorDataLocation && wire == ProtoReader.Varint) external = reader.ReadVarint() == 1;
            else reader.Skip(wire);
        }
        return new Tensor(raw, name, [.. dims], dataType, external);
    }

    /// <summary>
    /// The values of a small embedded tensor (float, double, int32 or int64; at most <paramref name="maxElements"/>) as
    /// doubles, or null for anything else: external, larger, another type.
    /// </summary>
    public static double[]? Values(Tensor tensor, int maxElements = 64)
    {
        if (tensor.External) return null;
        if (!TensorShape.TryCount(tensor.Dims, out var count) || count > maxElements) return null;
        var values = new List<double>();
        var reader = new ProtoReader(tensor.Raw);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            if (field == TensorRawData && wire == ProtoReader.LengthDelimited) Decode(reader.ReadBytes().Span, tensor.DataType, values);
            else if (field == TensorFloatData && wire == ProtoReader.LengthDelimited && tensor.DataType == Float) Decode(reader.ReadBytes().Span, Float, values);
            else if (field == TensorFloatData && wire == ProtoReader.Fixed32) values.Add(reader.ReadFixed32Float());
            else if (field == TensorDoubleData && wire == ProtoReader.LengthDelimited) Decode(reader.ReadBytes().Span, Double, values);
            else if (field is TensorInt64Data or TensorInt32Data && wire is ProtoReader.Varint or ProtoReader.LengthDelimited)
            {
                var ints = new List<long>();
                reader.ReadVarints(wire, ints);
                // int32_data holds int32 values as varints of their 64-bit two's complement.
                values.AddRange(ints.Select(v => field == TensorInt32Data ? (double)(int)v : v));
            }
            else reader.Skip(wire);
        }
        return values.Count == count ? [.. values] : null;
    }

    private static void Decode(ReadOnlySpan<byte> raw, int dataType, List<double> values)
    {
        switch (dataType)
        {
            case Float:
                for (var i = 0; i + 4 <= raw.Length; i += 4) values.Add(BinaryPrimitives.ReadSingleLittleEndian(raw[i..]));
                break;
            case Double:
                for (var i = 0; i + 8 <= raw.Length; i += 8) values.Add(BinaryPrimitives.ReadDoubleLittleEndian(raw[i..]));
                break;
            case Int64:
                for (var i = 0; i + 8 <= raw.Length; i += 8) values.Add(BinaryPrimitives.ReadInt64LittleEndian(raw[i..]));
                break;
            case Int32:
                for (var i = 0; i + 4 <= raw.Length; i += 4) values.Add(BinaryPrimitives.ReadInt32LittleEndian(raw[i..]));
                break;
            case Float16:
                for (var i = 0; i + 2 <= raw.Length; i += 2) values.Add((double)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(raw[i..])));
                break;
        }
    }

    private static string ReadValueInfoName(ReadOnlyMemory<byte> bytes)
    {
        var reader = new ProtoReader(bytes);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            if (field == ValueInfoName && wire == ProtoReader.LengthDelimited) return reader.ReadString();
            reader.Skip(wire);
        }
        return "";
    }

    /// <summary>
    /// The model with <paramref name="nodes"/> in place of its nodes and only the initializers they (or the graph
    /// outputs) still use; every other field as it was; <paramref name="extraOpsets"/> added to the operator sets.
    /// Written in one exact-size array: an embedded-weights model is copied once, not once per nesting level.
    /// </summary>
    public byte[] Write(IReadOnlyList<ReadOnlyMemory<byte>> nodes, IReadOnlySet<string> usedNames, IEnumerable<(string Domain, long Version)> extraOpsets)
    {
        var graph = new List<ReadOnlyMemory<byte>>();
        var nodesWritten = false;
        void AddNodes()
        {
            foreach (var node in nodes)
            {
                var header = new ProtoWriter();
                header.Header(GraphNode, node.Length);
                graph.Add(header.ToArray());
                graph.Add(node);
            }
            nodesWritten = true;
        }
        foreach (var (field, raw, initializer) in _graphFields)
        {
            if (field == GraphNode)
            {
                if (!nodesWritten) AddNodes();
            }
            else if (initializer is null || usedNames.Contains(initializer)) graph.Add(raw);
        }
        if (!nodesWritten) AddNodes();
        long graphLength = graph.Sum(g => (long)g.Length);

        var model = new List<ReadOnlyMemory<byte>>();
        foreach (var (field, raw) in _modelFields)
        {
            if (field != ModelGraph)
            {
                model.Add(raw);
                continue;
            }
            var header = new ProtoWriter();
            header.Header(ModelGraph, graphLength);
            model.Add(header.ToArray());
            model.AddRange(graph);
        }
        foreach (var (domain, version) in extraOpsets)
        {
            var opset = new ProtoWriter();
            opset.Message(ModelOpsetImport, o =>
            {
                o.String(OpsetDomain, domain);
                o.Varint(OpsetVersion, version);
            });
            model.Add(opset.ToArray());
        }
        var total = model.Sum(m => (long)m.Length);
        if (total > int.MaxValue) throw new InvalidDataException("the rewritten model is over 2 GB");
        var bytes = new byte[total];
        var at = 0;
        foreach (var part in model)
        {
            part.Span.CopyTo(bytes.AsSpan(at));
            at += part.Length;
        }
        return bytes;
    }

    /// <summary>A NodeProto: inputs, outputs, name, op type, domain and integer/float attributes.</summary>
    public static byte[] EncodeNode(IEnumerable<string> inputs, IEnumerable<string> outputs, string name, string opType, string domain,
        IEnumerable<(string Name, long? I, float? F)> attributes)
    {
        var node = new ProtoWriter();
        foreach (var input in inputs) node.String(NodeInput, input);
        foreach (var output in outputs) node.String(NodeOutput, output);
        node.String(NodeName, name);
        node.String(NodeOpType, opType);
        foreach (var (attrName, i, f) in attributes)
            node.Message(NodeAttribute, a =>
            {
                a.String(AttributeName, attrName);
                if (i is { } iv)
                {
                    a.Varint(AttributeI, iv);
                    a.Varint(AttributeType, AttributeTypeInt);
                }
                else if (f is { } fv)
                {
                    a.Float(AttributeF, fv);
                    a.Varint(AttributeType, AttributeTypeFloat);
                }
            });
        if (domain.Length > 0) node.String(NodeDomain, domain);
        return node.ToArray();
    }

    /// <summary>
    /// A small model of <paramref name="nodes"/> and <paramref name="initializers"/> (raw protos) with float inputs of
    /// rank <paramref name="inputRank"/> (dynamic sizes) and float outputs: for checking a rewrite with ONNX Runtime.
    /// </summary>
    public byte[] Subgraph(IEnumerable<ReadOnlyMemory<byte>> nodes, IEnumerable<Tensor> initializers, IEnumerable<string> inputs, int inputRank,
        IEnumerable<string> outputs, IEnumerable<(string Domain, long Version)> extraOpsets)
    {
        var model = new ProtoWriter();
        model.Varint(ModelIrVersion, IrVersion);
        foreach (var (domain, version) in Opsets.Concat(extraOpsets))
            model.Message(ModelOpsetImport, o =>
            {
                if (domain.Length > 0) o.String(OpsetDomain, domain);
                o.Varint(OpsetVersion, version);
            });
        model.Message(ModelGraph, graph =>
        {
            foreach (var node in nodes) graph.Bytes(GraphNode, node.Span);
            graph.String(GraphName, "check");
            foreach (var tensor in initializers) graph.Bytes(GraphInitializer, tensor.Raw.Span);
            foreach (var input in inputs) graph.Message(GraphInput, v => ValueInfo(v, input, inputRank));
            foreach (var output in outputs) graph.Message(GraphOutput, v => ValueInfo(v, output, null));
        });
        return model.ToArray();
    }

    // ValueInfoProto { name, type { tensor_type { elem_type FLOAT, shape { dim { dim_param "dN" } … } } } }.
    private static void ValueInfo(ProtoWriter v, string name, int? rank)
    {
        v.String(ValueInfoName, name);
        v.Message(ValueInfoType, type => type.Message(TypeTensor, tensor =>
        {
            tensor.Varint(TensorTypeElement, Float);
            if (rank is { } r)
                tensor.Message(TensorTypeShape, shape =>
                {
                    for (var d = 0; d < r; d++) shape.Message(ShapeDim, dim => dim.String(DimParam, $"d{d}"));
                });
        }));
    }
}
