using static LocalDiffusion.Onnx.Rewriting.OnnxFields;

namespace LocalDiffusion.Onnx;

/// <summary>
/// What the engine needs to know about an .onnx file before ONNX Runtime opens it, read straight from its protobuf
/// encoding without loading the weights: which external-data files its tensors live in (and how many bytes of each
/// they need), and how many stride-2 convolutions its main graph has (a UNet's down-sampling levels).
/// Unknown fields are skipped, so any valid model scans; a file that is not valid protobuf gives null and is left to
/// ONNX Runtime to reject.
/// </summary>
internal sealed class OnnxFileScan
{
    // Field numbers: onnx.proto's, from Rewriting.OnnxFields.
    private const int Float16DataType = Rewriting.OnnxGraph.Float16; // onnx.TensorProto.FLOAT16
    private const int BFloat16DataType = 16; // onnx.TensorProto.BFLOAT16

    /// <summary>External-data file name (relative to the model) → bytes of it the tensors need (max offset + length).</summary>
    public Dictionary<string, long> ExternalDataEnd { get; } = new(StringComparer.Ordinal);

    /// <summary>Conv nodes whose strides are all 2 (diffusers' Downsample2D): a UNet halves its latents this many times.</summary>
    public int StrideTwoConvolutions { get; private set; }

    /// <summary>
    /// Some initializer (weight) of the main graph is stored as float16: the model computes in half precision
    /// somewhere, even when its inputs and outputs are float32 (an fp16 export with keep_io_types).
    /// </summary>
    public bool HasFloat16Weights { get; private set; }

    /// <summary>Whether any initializer is bfloat16 (Black Forest Labs' bf16 FLUX release), which the CPU provider mostly cannot run.</summary>
    public bool HasBFloat16Weights { get; private set; }

    /// <summary>Softmax nodes of the main graph: in a UNet, its attention blocks as torch.onnx spells them out.</summary>
    public int SoftmaxNodes { get; private set; }

    /// <summary>ONNX Runtime's fused attention nodes (com.microsoft MultiHeadAttention/Attention) of the main graph.</summary>
    public int FusedAttentionNodes { get; private set; }

    /// <summary>Scans <paramref name="path"/>; null when it is not readable protobuf.</summary>
    public static OnnxFileScan? TryRead(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            var scan = new OnnxFileScan();
            var reader = new ProtoReader(stream);
            while (reader.Position < stream.Length)
            {
                var (field, wire) = reader.Tag();
                if (field == ModelGraph && wire == ProtoReader.LengthDelimited) scan.ReadGraph(reader, reader.Length());
                else reader.Skip(wire);
            }
            return scan;
        }
        catch (InvalidDataException) { return null; }
        catch (EndOfStreamException) { return null; }
    }

    private void ReadGraph(ProtoReader reader, long length)
    {
        var end = reader.Position + length;
        while (reader.Position < end)
        {
            var (field, wire) = reader.Tag();
            if (field == GraphNode && wire == ProtoReader.LengthDelimited) ReadNode(reader, reader.Length());
            else if (field == GraphInitializer && wire == ProtoReader.LengthDelimited) ReadTensor(reader, reader.Length());
            else reader.Skip(wire);
        }
    }

    private void ReadNode(ProtoReader reader, long length)
    {
        var end = reader.Position + length;
        string? opType = null;
        var strideTwo = false;
        while (reader.Position < end)
        {
            var (field, wire) = reader.Tag();
            if (field == NodeOpType && wire == ProtoReader.LengthDelimited) opType = reader.String();
            else if (field == NodeAttribute && wire == ProtoReader.LengthDelimited) strideTwo |= IsStrideTwo(reader, reader.Length());
            else reader.Skip(wire);
        }
        if (opType == "Conv" && strideTwo) StrideTwoConvolutions++;
        if (opType == "Softmax") SoftmaxNodes++;
        if (opType is "MultiHeadAttention" or "Attention") FusedAttentionNodes++;
    }

    private static bool IsStrideTwo(ProtoReader reader, long length)
    {
        var end = reader.Position + length;
        string? name = null;
        var ints = new List<long>();
        while (reader.Position < end)
        {
            var (field, wire) = reader.Tag();
            if (field == AttributeName && wire == ProtoReader.LengthDelimited) name = reader.String();
            else if (field == AttributeInts && wire == ProtoReader.VarintWire) ints.Add((long)reader.Varint());
            else if (field == AttributeInts && wire == ProtoReader.LengthDelimited)
            {
                var packedEnd = reader.Position + reader.Length();
                while (reader.Position < packedEnd) ints.Add((long)reader.Varint());
            }
            else reader.Skip(wire);
        }
        return name == "strides" && ints.Count > 0 && ints.TrueForAll(s => s == 2);
    }

    private void ReadTensor(ProtoReader reader, long length)
    {
        var end = reader.Position + length;
        string? location = null;
        long offset = 0, size = -1;
        var external = false;
        while (reader.Position < end)
        {
            var (field, wire) = reader.Tag();
            if (field == TensorDataLocation && wire == ProtoReader.VarintWire) external = reader.Varint() == 1;
            else if (field == TensorDataType && wire == ProtoReader.VarintWire)
            {
                var type = reader.Varint();
                HasFloat16Weights |= type == Float16DataType;
                HasBFloat16Weights |= type == BFloat16DataType;
            }
            else if (field == TensorExternalData && wire == ProtoReader.LengthDelimited)
            {
                var (key, value) = ReadEntry(reader, reader.Length());
                switch (key)
                {
                    case "location": location = value; break;
                    case "offset": offset = long.TryParse(value, out var o) ? o : 0; break;
                    case "length": size = long.TryParse(value, out var l) ? l : -1; break;
                }
            }
            else reader.Skip(wire);
        }
        if (!external || location is null) return;
        // Without a length ONNX Runtime reads to the end of the file; the file must at least reach the offset.
        var needed = offset + Math.Max(size, 0);
        ExternalDataEnd[location] = Math.Max(ExternalDataEnd.GetValueOrDefault(location), needed);
    }

    private static (string? Key, string? Value) ReadEntry(ProtoReader reader, long length)
    {
        var end = reader.Position + length;
        string? key = null, value = null;
        while (reader.Position < end)
        {
            var (field, wire) = reader.Tag();
            if (field == EntryKey && wire == ProtoReader.LengthDelimited) key = reader.String();
            else if (field == EntryValue && wire == ProtoReader.LengthDelimited) value = reader.String();
            else reader.Skip(wire);
        }
        return (key, value);
    }

    /// <summary>Protobuf wire-format reading over a seekable stream: weights are skipped by seeking, never read.</summary>
    private sealed class ProtoReader(Stream stream)
    {
        public const int VarintWire = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

        public long Position => stream.Position;

        public (int Field, int Wire) Tag()
        {
            var tag = Varint();
            var field = (int)(tag >> 3);
            if (field == 0) throw new InvalidDataException("field number 0");
            return (field, (int)(tag & 7));
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = stream.ReadByte();
                if (b < 0) throw new EndOfStreamException();
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw new InvalidDataException("varint longer than 10 bytes");
        }

        public long Length()
        {
            var length = Varint();
            if (length > (ulong)(stream.Length - stream.Position)) throw new InvalidDataException("length past the end of the file");
            return (long)length;
        }

        public string String()
        {
            var length = Length();
            if (length > 1 << 20) throw new InvalidDataException("string field over 1 MiB");
            var bytes = new byte[length];
            stream.ReadExactly(bytes);
            return System.Text.Encoding.UTF8.GetString(bytes);
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case VarintWire: Varint(); break;
                case Fixed64: SkipBytes(8); break;
                case LengthDelimited: SkipBytes(Length()); break;
                case Fixed32: SkipBytes(4); break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
        }

        private void SkipBytes(long count)
        {
            if (count > stream.Length - stream.Position) throw new EndOfStreamException();
            stream.Seek(count, SeekOrigin.Current);
        }
    }
}
