using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using LocalDiffusion.Onnx.Rewriting;
using LocalDiffusion.Tensors;
using static LocalDiffusion.Onnx.Rewriting.OnnxFields;

namespace LocalDiffusion.Adapters;

/// <summary>
/// The weights of one .onnx model that LoRAs can change, found from its node names (torch.onnx names nodes after the
/// module path, <c>/down_blocks.0/attentions.0/…/to_q/MatMul</c>, while Linear weights are anonymous
/// <c>onnx::MatMul_N</c> initializers), and their values read on demand from the file or its external data.
/// </summary>
internal sealed class ModelWeights : IDisposable
{
    private readonly MappedFile _file;
    private readonly OnnxGraph _graph;

    private ModelWeights(string path, MappedFile file, OnnxGraph graph, List<WeightTarget> targets)
    {
        ModelPath = path;
        _file = file;
        _graph = graph;
        Targets = targets;
    }

    /// <summary>The .onnx file.</summary>
    public string ModelPath { get; }

    /// <summary>Every MatMul/Gemm/Conv weight initializer whose node names a module.</summary>
    public IReadOnlyList<WeightTarget> Targets { get; }

    /// <summary>Reads the graph of <paramref name="modelPath"/> (memory-mapped; weights are not read).</summary>
    public static ModelWeights Open(string modelPath)
    {
        var file = new MappedFile(modelPath);
        try
        {
            var graph = OnnxGraph.Parse(file.Memory);
            return new ModelWeights(modelPath, file, graph, FindTargets(graph));
        }
        catch
        {
            ((IDisposable)file).Dispose();
            throw;
        }
    }

    private static List<WeightTarget> FindTargets(OnnxGraph graph)
    {
        // A float16 export feeds weights through Cast (or Identity) nodes: follow those back to the initializer.
        var producers = graph.Nodes.Where(n => n.OpType is "Cast" or "Identity" && n.Inputs.Length == 1 && n.Outputs.Length == 1)
            .GroupBy(n => n.Outputs[0]).ToDictionary(g => g.Key, g => g.First().Inputs[0], StringComparer.Ordinal);
        var targets = new List<WeightTarget>();
        foreach (var node in graph.Nodes)
        {
            if (node.Domain.Length > 0 || node.OpType is not ("MatMul" or "Gemm" or "Conv") || node.Inputs.Length < 2) continue;
            var name = node.Inputs[1];
            for (var hops = 0; !graph.Initializers.ContainsKey(name) && hops < 2 && producers.TryGetValue(name, out var source); hops++) name = source;
            if (!graph.Initializers.TryGetValue(name, out var tensor) || tensor.DataType is not (OnnxGraph.Float or OnnxGraph.Float16)) continue;
            if (ModulePathOf(node.Name) is not { } module) continue;
            WeightLayout? layout = node.OpType switch
            {
                "MatMul" when tensor.Dims.Length == 2 => WeightLayout.MatMulTransposed,
                "Gemm" when tensor.Dims.Length == 2 => node.Attributes.TryGetValue("transB", out var t) && t.I == 1 ? WeightLayout.GemmTransB : WeightLayout.GemmPlain,
                "Conv" when tensor.Dims.Length >= 3 => WeightLayout.Conv,
                _ => null,
            };
            if (layout is { } l) targets.Add(new WeightTarget(module, name, l, tensor.Dims, tensor.DataType, node.Name, name != node.Inputs[1]));
        }
        return targets;
    }

    /// <summary>Whether the graph has an initializer <paramref name="name"/> of dimensions <paramref name="dims"/>.</summary>
    public bool HasInitializer(string name, ReadOnlySpan<long> dims) =>
        _graph.Initializers.TryGetValue(name, out var tensor) && tensor.Dims.AsSpan().SequenceEqual(dims);

    /// <summary>
    /// In a graph ONNX Runtime optimised at the "all" level: the filters of its NCHWc convolutions (domain
    /// <c>com.microsoft.nchwc</c>), reordered under names of their own (<c>reorder_token_N</c>), each with the module path of
    /// its node's name (<c>/down_blocks.0/attentions.0/proj_in/Conv_output_0_nchwc</c>). Float32 filters only.
    /// </summary>
    public IReadOnlyList<WeightTarget> NchwcConvFilters()
    {
        var filters = new List<WeightTarget>();
        foreach (var node in _graph.Nodes)
        {
            if (node.Domain != "com.microsoft.nchwc" || node.OpType != "Conv" || node.Inputs.Length < 2) continue;
            if (!_graph.Initializers.TryGetValue(node.Inputs[1], out var tensor) || tensor.DataType != OnnxGraph.Float) continue;
            if (ModulePathOf(node.Name) is { } module)
                filters.Add(new WeightTarget(module, tensor.Name, WeightLayout.Conv, tensor.Dims, tensor.DataType, node.Name));
        }
        return filters;
    }

    /// <summary>
    /// The text encoder's token-embedding table: the [vocabulary, width] float initializer of the Gather whose indices
    /// come from a graph input (input_ids, through Cast/Reshape/… as exporters write it), found from the graph rather than
    /// from one exporter's names. Null when there is none (an encoder whose embedding is computed differently).
    /// </summary>
    public WeightTarget? FindTokenEmbedding()
    {
        var producers = new Dictionary<string, OnnxGraph.Node>(StringComparer.Ordinal);
        foreach (var node in _graph.Nodes)
            foreach (var output in node.Outputs) producers.TryAdd(output, node);
        bool FromGraphInput(string name)
        {
            // Ops that pass ids through unchanged in value (shape and type changes only).
            for (var hops = 0; hops < 8; hops++)
            {
                if (_graph.Initializers.ContainsKey(name)) return false;
                if (!producers.TryGetValue(name, out var node)) return true;
                if (node.Domain.Length > 0 || node.OpType is not ("Cast" or "Reshape" or "Identity" or "Squeeze" or "Unsqueeze" or "Flatten") || node.Inputs.Length == 0) return false;
                name = node.Inputs[0];
            }
            return false;
        }
        var found = new List<WeightTarget>();
        foreach (var node in _graph.Nodes)
        {
            if (node.Domain.Length > 0 || node.OpType != "Gather" || node.Inputs.Length != 2) continue;
            var table = node.Inputs[0];
            var throughCast = false;
            if (!_graph.Initializers.ContainsKey(table) && producers.TryGetValue(table, out var cast) && cast.OpType is "Cast" or "Identity" && cast.Inputs.Length == 1)
            {
                table = cast.Inputs[0];
                throughCast = true;
            }
            if (!_graph.Initializers.TryGetValue(table, out var tensor) || tensor.Dims.Length != 2 || tensor.DataType is not (OnnxGraph.Float or OnnxGraph.Float16)) continue;
            if (node.Attributes.TryGetValue("axis", out var axis) && axis.I is not (null or 0)) continue;
            if (FromGraphInput(node.Inputs[1]))
                found.Add(new WeightTarget(ModulePathOf(node.Name) ?? table, table, WeightLayout.Table, tensor.Dims, tensor.DataType, node.Name, throughCast));
        }
        return found.Count == 1 ? found[0] : null;
    }

    /// <summary><c>/unet/down_blocks.0/resnets.0/conv1/Conv</c> → <c>unet.down_blocks.0.resnets.0.conv1</c>; null for a name without a path.</summary>
    public static string? ModulePathOf(string nodeName)
    {
        if (!nodeName.StartsWith('/')) return null;
        var segments = nodeName[1..].Split('/');
        if (segments.Length < 2 || segments[..^1].Any(s => s.Length == 0)) return null;
        return string.Join('.', segments[..^1]);
    }

    /// <summary>The stored values of <paramref name="target"/>'s initializer as float32, in stored order.</summary>
    public float[] Read(WeightTarget target)
    {
        var values = new float[TensorShape.ArrayLength(target.Dims)];
        ReadInto(target, values);
        return values;
    }

    /// <summary>
    /// Reads <paramref name="target"/>'s stored values as float32, in stored order, into <paramref name="destination"/>
    /// (exactly its element count long). float32 data in an external file is read straight into it: a UNet's LoRA-changed
    /// weights are a gigabyte, and a byte copy of each beside it would be as much garbage again.
    /// </summary>
    public void ReadInto(WeightTarget target, Span<float> destination)
    {
        var tensor = _graph.Initializers[target.Initializer];
        var count = TensorShape.Count(target.Dims);
        if (destination.Length != count) throw new ArgumentException($"{target.Initializer} has {count} values, the destination {destination.Length}", nameof(destination));
        var size = tensor.DataType == OnnxGraph.Float ? 4 : 2;
        var expected = count * size;
        var (embedded, dataPath, offset, length) = Locate(tensor);
        if ((embedded?.Length ?? length) is var stored && stored >= 0 && stored != expected)
            throw new InvalidDataException($"{ModelPath}: initializer {target.Initializer} holds {stored} bytes, not the {expected} its shape needs");
        // ONNX stores little-endian: on such a machine float32 bytes are the values (a UNet's attention weights: 1 GB).
        if (embedded is null && size == 4 && BitConverter.IsLittleEndian)
        {
            ReadExternal(dataPath!, offset, MemoryMarshal.AsBytes(destination), tensor.Name);
            return;
        }
        byte[]? buffer = null;
        if (embedded is null) ReadExternal(dataPath!, offset, buffer = new byte[expected], tensor.Name);
        ReadOnlySpan<byte> span = embedded is { } e ? e.Span : buffer;
        if (BitConverter.IsLittleEndian && size == 4) MemoryMarshal.Cast<byte, float>(span).CopyTo(destination);
        else if (BitConverter.IsLittleEndian) TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(span), destination);
        else if (size == 4)
            for (var i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(span[(4 * i)..]);
        else
            for (var i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(span[(2 * i)..]);
    }

    // Where a tensor's bytes are: in the .onnx file (raw_data, or packed float_data), or in an external file at an offset
    // (length -1 when the entry does not say).
    private (ReadOnlyMemory<byte>? Embedded, string? DataPath, long Offset, long Length) Locate(OnnxGraph.Tensor tensor)
    {
        var reader = new ProtoReader(tensor.Raw);
        string? location = null;
        long offset = 0, length = -1;
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            if (field == TensorRawData && wire == ProtoReader.LengthDelimited) return (reader.ReadBytes(), null, 0, -1);
            if (field == TensorFloatData && wire == ProtoReader.LengthDelimited) return (reader.ReadBytes(), null, 0, -1); // packed little-endian floats
            if (field == TensorExternalData && wire == ProtoReader.LengthDelimited)
            {
                var entry = new ProtoReader(reader.ReadBytes());
                string key = "", value = "";
                while (entry.More)
                {
                    var (f, w) = entry.Tag();
                    if (f == EntryKey && w == ProtoReader.LengthDelimited) key = entry.ReadString();
                    else if (f == EntryValue && w == ProtoReader.LengthDelimited) value = entry.ReadString();
                    else entry.Skip(w);
                }
                switch (key)
                {
                    case "location": location = value; break;
                    case "offset": offset = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
                    case "length": length = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
                }
            }
            else reader.Skip(wire);
        }
        if (location is null) throw new InvalidDataException($"{ModelPath}: initializer {tensor.Name} has no raw_data the engine can read");
        return (null, Path.Combine(Path.GetDirectoryName(Path.GetFullPath(ModelPath))!, location), offset, length);
    }

    private static void ReadExternal(string dataPath, long offset, Span<byte> destination, string tensorName)
    {
        using var handle = File.OpenHandle(dataPath);
        var read = 0;
        while (read < destination.Length)
        {
            var n = RandomAccess.Read(handle, destination[read..], offset + read);
            if (n == 0) throw new InvalidDataException($"{dataPath}: ends before initializer {tensorName}'s data (offset {offset}, {destination.Length} bytes)");
            read += n;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => ((IDisposable)_file).Dispose();
}
