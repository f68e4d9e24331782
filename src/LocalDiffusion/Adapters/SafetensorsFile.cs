using System.Buffers.Binary;
using System.Numerics.Tensors;
using Microsoft.Win32.SafeHandles;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.Adapters;

/// <summary>
/// A strictly checked <c>.safetensors</c> file: an 8-byte little-endian header length, a UTF-8 JSON header
/// <c>{name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}</c>, then the tensors' raw little-endian
/// bytes. The header is read and checked when the file is opened (every offset, shape and type); tensor data is read
/// one tensor at a time, so a multi-GB file is never held in memory whole. Every problem is a
/// <see cref="SafetensorsException"/> naming the file, the key and the byte offset.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Headers above this are refused as absurd (real ones are kilobytes to a few MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, SafetensorsEntry> _entries;

    private SafetensorsFile(string path, SafeFileHandle handle, Dictionary<string, SafetensorsEntry> entries, Dictionary<string, string> metadata)
    {
        FilePath = path;
        _handle = handle;
        _entries = entries;
        Metadata = metadata;
    }

    /// <summary>The file's path.</summary>
    public string FilePath { get; }

    /// <summary>The tensors, in the order of their data in the file.</summary>
    public IReadOnlyCollection<SafetensorsEntry> Entries => _entries.Values;

    /// <summary>The header's <c>__metadata__</c> strings (empty when it has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The entry for <paramref name="key"/>, or null.</summary>
    public SafetensorsEntry? Find(string key) => _entries.GetValueOrDefault(key);

    /// <summary>Opens and checks <paramref name="path"/>; the handle stays open until disposed.</summary>
    public static SafetensorsFile Open(string path)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SafetensorsException(path, null, null, $"cannot be opened: {e.Message}", e);
        }
        try
        {
            var (entries, metadata) = SafetensorsHeader.Read(path, handle);
            return new SafetensorsFile(path, handle, entries, metadata);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Reads only the header's <c>__metadata__</c> (for listings).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using var file = Open(path);
        return file.Metadata;
    }

    /// <summary>The tensor <paramref name="key"/> converted to float32 (row-major, as stored).</summary>
    public float[] ReadFloat32(string key)
    {
        var entry = Find(key) ?? throw new SafetensorsException(FilePath, key, null, "no such tensor in the file");
        return ReadFloat32(entry);
    }

    // A tensor the header allows (its bytes are in the file) may still be more values than one array holds.
    private int Length(SafetensorsEntry entry)
    {
        try
        {
            return TensorShape.ArrayLength(entry.Shape);
        }
        catch (InvalidDataException e)
        {
            throw new SafetensorsException(FilePath, entry.Name, entry.FileOffset, e.Message.TrimEnd('.'), e);
        }
    }

    /// <inheritdoc cref="ReadFloat32(string)"/>
    public float[] ReadFloat32(SafetensorsEntry entry)
    {
        var bytes = new byte[entry.ByteLength];
        var read = 0;
        while (read < bytes.Length)
        {
            var n = RandomAccess.Read(_handle, bytes.AsSpan(read), entry.FileOffset + read);
            if (n == 0)
                throw new SafetensorsException(FilePath, entry.Name, entry.FileOffset + read, "the file ended inside this tensor's data (changed since it was opened?)");
            read += n;
        }
        var values = new float[Length(entry)];
        switch (entry.DType)
        {
            case SafetensorsDType.F32:
                for (var i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(4 * i));
                break;
            case SafetensorsDType.F16:
                var halves = new Half[values.Length];
                for (var i = 0; i < halves.Length; i++) halves[i] = BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan(2 * i));
                TensorPrimitives.ConvertToSingle(halves, values);
                break;
            case SafetensorsDType.BF16:
                // bfloat16 is the upper 16 bits of a float32.
                for (var i = 0; i < values.Length; i++)
                    values[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2 * i)) << 16);
                break;
        }
        return values;
    }

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();
}
