using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace LocalDiffusion.Adapters;

/// <summary>Reads and checks a safetensors header (see <see cref="SafetensorsFile"/>).</summary>
internal static class SafetensorsHeader
{
    private const string MetadataKey = "__metadata__";
    private const long DataStart = 8;

    public static (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>) Read(string path, SafeFileHandle handle)
    {
        var fileLength = RandomAccess.GetLength(handle);
        if (fileLength < DataStart)
            throw new SafetensorsException(path, null, 0, $"the file is {fileLength} bytes, too short for the 8-byte header length: not a safetensors file, or truncated");
        Span<byte> lengthBytes = stackalloc byte[8];
        ReadExactly(path, handle, lengthBytes, 0);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > SafetensorsFile.MaxHeaderBytes)
            throw new SafetensorsException(path, null, 0, $"the header length is {headerLength} bytes, over the {SafetensorsFile.MaxHeaderBytes}-byte limit: not a safetensors file, or damaged");
        if ((long)headerLength > fileLength - DataStart)
            throw new SafetensorsException(path, null, 0, $"the header length is {headerLength} bytes, but only {fileLength - DataStart} follow: the file is truncated or not a safetensors file");
        var header = new byte[headerLength];
        ReadExactly(path, handle, header, DataStart);
        var dataOffset = DataStart + (long)headerLength;
        var dataLength = fileLength - dataOffset;

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (Exception e) when (e is JsonException or ArgumentException or DecoderFallbackException)
        {
            long? at = e is JsonException { LineNumber: 0, BytePositionInLine: { } b } ? DataStart + b : DataStart;
            throw new SafetensorsException(path, null, at, $"the header is not valid UTF-8 JSON ({e.Message})", e);
        }
        using (document)
        try
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException(path, null, DataStart, $"the header is a JSON {document.RootElement.ValueKind}, not an object");
            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new SafetensorsException(path, property.Name, DataStart, "the header names this key twice");
                if (property.Name == MetadataKey) ReadMetadata(path, property.Value, metadata);
                else entries.Add(property.Name, ReadEntry(path, property.Name, property.Value, dataOffset));
            }
            return (CheckLayout(path, entries, dataOffset, dataLength), metadata);
        }
        catch (InvalidOperationException e)
        {
            // JsonElement refuses strings it cannot transcode (invalid UTF-8 inside a valid token).
            throw new SafetensorsException(path, null, DataStart, $"the header has a string that is not valid UTF-8 ({e.Message})", e);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(path, MetadataKey, DataStart, $"__metadata__ is a JSON {value.ValueKind}, not an object of strings");
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsException(path, $"{MetadataKey}.{item.Name}", DataStart, $"metadata values must be strings, this one is a JSON {item.Value.ValueKind}");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw new SafetensorsException(path, $"{MetadataKey}.{item.Name}", DataStart, "the metadata names this key twice");
        }
    }

    private static SafetensorsEntry ReadEntry(string path, string key, JsonElement value, long dataOffset)
    {
        SafetensorsException Bad(string problem) => new(path, key, DataStart, problem);
        if (value.ValueKind != JsonValueKind.Object) throw Bad($"the entry is a JSON {value.ValueKind}, not {{dtype, shape, data_offsets}}");
        if (!value.TryGetProperty("dtype", out var dtypeValue) || dtypeValue.ValueKind != JsonValueKind.String) throw Bad("the entry has no \"dtype\" string");
        var dtypeName = dtypeValue.GetString()!;
        var dtype = dtypeName switch
        {
            "F32" => SafetensorsDType.F32,
            "F16" => SafetensorsDType.F16,
            "BF16" => SafetensorsDType.BF16,
            _ => throw Bad($"dtype \"{dtypeName}\" is not supported (adapters are read from F32, F16 or BF16 tensors)"),
        };
        if (!value.TryGetProperty("shape", out var shapeValue) || shapeValue.ValueKind != JsonValueKind.Array) throw Bad("the entry has no \"shape\" array");
        var shape = new long[shapeValue.GetArrayLength()];
        var i = 0;
        long elements = 1;
        foreach (var dim in shapeValue.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var d) || d < 0) throw Bad($"shape {shapeValue.GetRawText()} has a dimension that is not a non-negative integer");
            shape[i++] = d;
            elements = d == 0 ? 0 : elements > long.MaxValue / d ? throw Bad($"shape {shapeValue.GetRawText()} overflows") : elements * d;
        }
        if (!value.TryGetProperty("data_offsets", out var offsetsValue) || offsetsValue.ValueKind != JsonValueKind.Array || offsetsValue.GetArrayLength() != 2)
            throw Bad("the entry has no \"data_offsets\" [begin, end] pair");
        var begin = Offset(offsetsValue[0]) ?? throw Bad($"data_offsets {offsetsValue.GetRawText()} are not non-negative integers");
        var end = Offset(offsetsValue[1]) ?? throw Bad($"data_offsets {offsetsValue.GetRawText()} are not non-negative integers");
        if (end < begin) throw new SafetensorsException(path, key, dataOffset + begin, $"data_offsets [{begin}, {end}] end before they begin");
        var size = dtype == SafetensorsDType.F32 ? 4 : 2;
        if (begin % size != 0) throw new SafetensorsException(path, key, dataOffset + begin, $"data_offsets begin at {begin}, not a multiple of the {size}-byte {dtypeName} element: misaligned");
        if (elements > long.MaxValue / size || elements * size != end - begin)
            throw new SafetensorsException(path, key, dataOffset + begin, $"shape {shapeValue.GetRawText()} of {dtypeName} needs {(elements > long.MaxValue / size ? "more than 2^63" : (elements * size).ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes, but data_offsets [{begin}, {end}] hold {end - begin}");
        if (begin > long.MaxValue - dataOffset) throw Bad($"data_offsets [{begin}, {end}] are out of range");
        return new SafetensorsEntry(key, dtype, shape, dataOffset + begin, end - begin);
    }

    private static long? Offset(JsonElement e) => e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var v) && v >= 0 ? v : null;

    // As the reference implementation requires: the tensors tile the data section exactly, no overlap, no hole, no tail.
    private static Dictionary<string, SafetensorsEntry> CheckLayout(string path, Dictionary<string, SafetensorsEntry> entries, long dataOffset, long dataLength)
    {
        var ordered = entries.Values.OrderBy(e => e.FileOffset).ThenBy(e => e.ByteLength).ToList();
        var expected = dataOffset;
        foreach (var entry in ordered)
        {
            if (entry.FileOffset < expected)
                throw new SafetensorsException(path, entry.Name, entry.FileOffset, $"the tensor's bytes overlap the previous tensor's (which end at offset {expected})");
            if (entry.FileOffset > expected)
                throw new SafetensorsException(path, entry.Name, expected, $"the data has a {entry.FileOffset - expected}-byte hole before this tensor");
            if (entry.FileOffset - dataOffset > dataLength - entry.ByteLength)
                throw new SafetensorsException(path, entry.Name, entry.FileOffset,
                    $"the tensor's bytes run to offset {entry.FileOffset + entry.ByteLength}, but the file ends at {dataOffset + dataLength}: the file is truncated");
            expected = entry.FileOffset + entry.ByteLength;
        }
        if (expected != dataOffset + dataLength)
            throw new SafetensorsException(path, null, expected, $"{dataOffset + dataLength - expected} bytes after the last tensor belong to no key");
        return ordered.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    private static void ReadExactly(string path, SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer[read..], offset + read);
            if (n == 0) throw new SafetensorsException(path, null, offset + read, "the file ends early: truncated");
            read += n;
        }
    }
}
