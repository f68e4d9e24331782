using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace LocalDiffusion.Onnx.Rewriting;

/// <summary>Reads protobuf's wire format from memory, field by field, keeping each field's raw bytes at hand for copying.</summary>
internal sealed class ProtoReader(ReadOnlyMemory<byte> data)
{
    public const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

    private int _position;

    public bool More => _position < data.Length;

    public int Position => _position;

    /// <summary>The bytes from <paramref name="start"/> to here: a whole field, tag included, when <paramref name="start"/> was its tag's position.</summary>
    public ReadOnlyMemory<byte> Since(int start) => data[start.._position];

    public (int Field, int Wire) Tag()
    {
        var tag = ReadVarint();
        var field = (int)(tag >> 3);
        if (field == 0) throw new InvalidDataException("protobuf field number 0");
        return (field, (int)(tag & 7));
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        var span = data.Span;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (_position >= span.Length) throw new InvalidDataException("protobuf varint past the end");
            var b = span[_position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw new InvalidDataException("protobuf varint longer than 10 bytes");
    }

    public ReadOnlyMemory<byte> ReadBytes()
    {
        var length = ReadVarint();
        if (length > (ulong)(data.Length - _position)) throw new InvalidDataException("protobuf length past the end");
        var bytes = data.Slice(_position, (int)length);
        _position += (int)length;
        return bytes;
    }

    public string ReadString() => Encoding.UTF8.GetString(ReadBytes().Span);

    public float ReadFixed32Float()
    {
        if (_position + 4 > data.Length) throw new InvalidDataException("protobuf fixed32 past the end");
        var value = BinaryPrimitives.ReadSingleLittleEndian(data.Span.Slice(_position, 4));
        _position += 4;
        return value;
    }

    /// <summary>A repeated varint field's values, packed or not (<paramref name="wire"/> says which), appended to <paramref name="values"/>.</summary>
    public void ReadVarints(int wire, List<long> values)
    {
        if (wire == Varint)
        {
            values.Add((long)ReadVarint());
            return;
        }
        var packed = new ProtoReader(ReadBytes());
        while (packed.More) values.Add((long)packed.ReadVarint());
    }

    public void Skip(int wire)
    {
        switch (wire)
        {
            case Varint: ReadVarint(); break;
            case Fixed64: Advance(8); break;
            case LengthDelimited: ReadBytes(); break;
            case Fixed32: Advance(4); break;
            default: throw new InvalidDataException($"protobuf wire type {wire} is not supported");
        }
    }

    private void Advance(int count)
    {
        if (_position + count > data.Length) throw new InvalidDataException("protobuf field past the end");
        _position += count;
    }
}

/// <summary>Writes protobuf's wire format: fields, nested messages (length-prefixed) and raw copies of fields read before.</summary>
internal sealed class ProtoWriter
{
    private readonly ArrayBufferWriter<byte> _buffer = new();

    public ReadOnlySpan<byte> Written => _buffer.WrittenSpan;

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    public void Raw(ReadOnlySpan<byte> bytes) => _buffer.Write(bytes);

    public void Varint(int field, long value)
    {
        WriteVarint((ulong)field << 3 | ProtoReader.Varint);
        WriteVarint((ulong)value);
    }

    public void Float(int field, float value)
    {
        WriteVarint((ulong)field << 3 | ProtoReader.Fixed32);
        BinaryPrimitives.WriteSingleLittleEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
    }

    public void Bytes(int field, ReadOnlySpan<byte> bytes)
    {
        WriteVarint((ulong)field << 3 | ProtoReader.LengthDelimited);
        WriteVarint((ulong)bytes.Length);
        _buffer.Write(bytes);
    }

    /// <summary>The tag and length of a length-delimited field whose <paramref name="length"/> bytes the caller writes after.</summary>
    public void Header(int field, long length)
    {
        WriteVarint((ulong)field << 3 | ProtoReader.LengthDelimited);
        WriteVarint((ulong)length);
    }

    public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public void Message(int field, Action<ProtoWriter> write)
    {
        var inner = new ProtoWriter();
        write(inner);
        Bytes(field, inner.Written);
    }

    private void WriteVarint(ulong value)
    {
        var span = _buffer.GetSpan(10);
        var n = 0;
        while (value >= 0x80)
        {
            span[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[n++] = (byte)value;
        _buffer.Advance(n);
    }
}
