using System.Buffers.Binary;
using System.IO.Compression;

namespace LocalDiffusion.Embeddings;

/// <summary>
/// A file torch.save wrote (torch ≥ 1.6's zip format): a zip holding <c>PREFIX/data.pkl</c> (the pickled object, read by
/// <see cref="TorchPickle"/>), <c>PREFIX/data/KEY</c> (each storage's raw little-endian bytes), <c>PREFIX/version</c> and,
/// from torch 2.1, <c>PREFIX/byteorder</c>. Anything else (the legacy pre-1.6 format, a big-endian file, a damaged zip) is a
/// <see cref="TextualInversionException"/> naming the file.
/// </summary>
internal sealed class TorchZipFile
{
    /// <summary>data.pkl larger than this is not an embedding (real ones are a few hundred bytes).</summary>
    private const long MaxPickleBytes = 16 << 20;

    /// <summary>Storages larger than this are not an embedding's vectors (SDXL's 2 × 1280 floats are 10 KB per vector).</summary>
    private const long MaxStorageBytes = 256 << 20;

    private readonly Dictionary<string, byte[]> _storages;

    private TorchZipFile(string path, object? root, Dictionary<string, byte[]> storages)
    {
        FilePath = path;
        Root = root;
        _storages = storages;
    }

    public string FilePath { get; }

    /// <summary>The unpickled object (for an embedding, a <see cref="PickleDict"/>).</summary>
    public object? Root { get; }

    public static TorchZipFile Open(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TextualInversionException(path, null, null, $"cannot be read: {e.Message}", e);
        }
        if (bytes.Length < 4 || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != 0x04034b50)
            throw new TextualInversionException(path, null, 0, bytes.Length >= 2 && bytes[0] == 0x80
                ? "this is torch's legacy (pre-1.6) serialization, not the zip format torch.save has written since; load and save it again with a current torch, or convert it to .safetensors"
                : "not a torch.save file (a zip starting with PK): truncated, or another format");
        try
        {
            using var zip = new ZipArchive(new MemoryStream(bytes, writable: false), ZipArchiveMode.Read);
            var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
            if (pickles.Count != 1)
                throw new TextualInversionException(path, null, null, $"a torch.save zip has one PREFIX/data.pkl; this one has {pickles.Count}");
            var prefix = pickles[0].FullName[..^"data.pkl".Length];
            if (zip.GetEntry(prefix + "byteorder") is { } order && Read(path, order, 16) is var text && System.Text.Encoding.ASCII.GetString(text) != "little")
                throw new TextualInversionException(path, prefix + "byteorder", null, "the tensors are stored big-endian; only little-endian files are read");
            var root = TorchPickle.Load(path, pickles[0].FullName, Read(path, pickles[0], MaxPickleBytes));
            var storages = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries)
                if (entry.FullName.StartsWith(prefix + "data/", StringComparison.Ordinal))
                    storages[entry.FullName[(prefix.Length + 5)..]] = Read(path, entry, MaxStorageBytes);
            return new TorchZipFile(path, root, storages);
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException or ArgumentException or IOException and not TextualInversionException)
        {
            throw new TextualInversionException(path, null, null, $"the torch.save zip is damaged or truncated ({e.Message})", e);
        }
    }

    private static byte[] Read(string path, ZipArchiveEntry entry, long limit)
    {
        if (entry.Length > limit)
            throw new TextualInversionException(path, entry.FullName, null, $"the record is {entry.Length} bytes, over the {limit}-byte limit for an embedding file");
        using var stream = entry.Open();
        var buffer = new byte[entry.Length];
        stream.ReadExactly(buffer);
        if (stream.ReadByte() >= 0) throw new TextualInversionException(path, entry.FullName, null, "the record holds more bytes than its zip entry says");
        return buffer;
    }

    /// <summary>The values of <paramref name="tensor"/> (the key naming it in messages) as float32, row-major.</summary>
    public float[] ReadFloat32(TorchTensor tensor, string key)
    {
        if (!_storages.TryGetValue(tensor.Storage.Key, out var bytes))
            throw new TextualInversionException(FilePath, key, null, $"the tensor's storage data/{tensor.Storage.Key} is not in the zip");
        var size = tensor.Storage.DType switch { "float64" => 8, "float32" => 4, _ => 2 };
        if (bytes.LongLength != tensor.Storage.Elements * size)
            throw new TextualInversionException(FilePath, key, null,
                $"storage data/{tensor.Storage.Key} holds {bytes.LongLength} bytes, not the {tensor.Storage.Elements} × {size} its pickle says: truncated or damaged");
        if (tensor.Shape.Length != tensor.Stride.Length)
            throw new TextualInversionException(FilePath, key, null, $"the tensor has {tensor.Shape.Length} dimensions but {tensor.Stride.Length} strides");
        long count = 1, last = tensor.Offset;
        foreach (var (d, s) in tensor.Shape.Zip(tensor.Stride))
        {
            if (d == 0) { count = 0; break; }
            if (d > int.MaxValue || count > int.MaxValue / d) throw new TextualInversionException(FilePath, key, null, "the tensor is too large");
            count *= d;
            last += (d - 1) * s;
        }
        if (count > 0 && (last >= tensor.Storage.Elements || tensor.Offset < 0))
            throw new TextualInversionException(FilePath, key, null, $"the tensor [{string.Join(", ", tensor.Shape)}] at offset {tensor.Offset} reaches past its storage of {tensor.Storage.Elements} elements");
        var values = new float[count];
        var index = new long[tensor.Shape.Length];
        for (var i = 0; i < count; i++)
        {
            var at = tensor.Offset;
            for (var k = 0; k < index.Length; k++) at += index[k] * tensor.Stride[k];
            values[i] = Element(bytes, (int)at, tensor.Storage.DType);
            for (var k = index.Length - 1; k >= 0 && ++index[k] == tensor.Shape[k]; k--) index[k] = 0;
        }
        return values;
    }

    private static float Element(byte[] bytes, int at, string dtype) => dtype switch
    {
        "float32" => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(4 * at)),
        "float64" => (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(8 * at)),
        "float16" => (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan(2 * at)),
        _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2 * at)) << 16),
    };
}
