using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using LocalDiffusion.Errors;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.Latents;

/// <summary>
/// Reads and writes NumPy <c>.npy</c> arrays (format 1.0–3.0, C order), so latents move between LocalDiffusion
/// and Python tools (<c>numpy.load</c>/<c>numpy.save</c>) unchanged.
/// </summary>
public static partial class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads a float16/float32/float64 array as float32 with its shape; errors name the file and field.</summary>
    public static (float[] Data, int[] Shape) Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found (a NumPy .npy array was expected).", path);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
            throw new InvalidDataException($"{path}: not a NumPy .npy file (the \\x93NUMPY magic is missing).");
        int major = bytes[6], headerLength, headerStart;
        if (major == 1) { headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)); headerStart = 10; }
        else if (major is 2 or 3) { headerLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)); headerStart = 12; }
        else throw new InvalidDataException($"{path}: .npy format version {major} is not supported (1, 2 or 3 expected).");
        if (headerStart + headerLength > bytes.Length) throw new InvalidDataException($"{path}: truncated .npy header.");
        var header = Encoding.UTF8.GetString(bytes, headerStart, headerLength);

        var descr = DescrPattern().Match(header);
        if (!descr.Success) throw new InvalidDataException($"{path}: .npy header has no 'descr' field: {header.Trim()}");
        if (FortranPattern().Match(header) is { Success: true } f && f.Groups[1].Value == "True")
            throw new InvalidDataException($"{path}: 'fortran_order' is True; save a C-ordered array (numpy.ascontiguousarray).");
        var shapeMatch = ShapePattern().Match(header);
        if (!shapeMatch.Success) throw new InvalidDataException($"{path}: .npy header has no 'shape' field: {header.Trim()}");
        var dims = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var shape = new int[dims.Length];
        long count = 1;
        for (var i = 0; i < dims.Length; i++)
        {
            if (!int.TryParse(dims[i], NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]))
                throw new InvalidDataException($"{path}: .npy shape ({shapeMatch.Groups[1].Value.Trim()}) has dimension '{dims[i]}'; whole numbers ≥ 0 were expected.");
            count *= shape[i];
            if (count > Array.MaxLength)
                throw new InvalidDataException($"{path}: .npy shape ({shapeMatch.Groups[1].Value.Trim()}) holds more values than an array can ({Array.MaxLength}).");
        }

        var type = descr.Groups[1].Value;
        var size = type.Length == 3 ? type[1..] switch { "f2" => 2, "f4" => 4, "f8" => 8, _ => 0 } : 0;
        if (size == 0 || type[0] == '>')
            throw new InvalidDataException($"{path}: dtype '{type}' is not supported; little-endian float16/32/64 ('<f2', '<f4', '<f8') was expected.");
        var dataStart = headerStart + headerLength;
        if (bytes.Length - dataStart < count * size)
            throw new InvalidDataException($"{path}: shape ({string.Join(", ", shape)}) needs {count * size} bytes of data, the file has {bytes.Length - dataStart}.");
        var data = new float[count];
        var raw = bytes.AsSpan(dataStart);
        for (var i = 0; i < count; i++)
        {
            data[i] = size switch
            {
                2 => (float)BinaryPrimitives.ReadHalfLittleEndian(raw[(i * 2)..]),
                4 => BinaryPrimitives.ReadSingleLittleEndian(raw[(i * 4)..]),
                _ => (float)BinaryPrimitives.ReadDoubleLittleEndian(raw[(i * 8)..]),
            };
        }
        return (data, shape);
    }

    /// <summary>Writes a float32 array of <paramref name="shape"/> in .npy format 1.0, whole or not at all.</summary>
    /// <param name="path">The file.</param>
    /// <param name="data">The values, C order.</param>
    /// <param name="shape">Their shape.</param>
    /// <param name="overwrite">Replace an existing file (else an existing file is an <see cref="IOException"/>).</param>
    public static void Write(string path, ReadOnlySpan<float> data, ReadOnlySpan<int> shape, bool overwrite = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        var count = TensorShape.Count(shape);
        if (count != data.Length)
            throw new InvalidRequestException(nameof(shape), null, null, $"shape ({string.Join(", ", shape.ToArray())}) holds {count} values, data has {data.Length}.");
        var dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape.ToArray());
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        // Pad with spaces so data starts on a 64-byte boundary, newline-terminated, as numpy does.
        var total = 10 + header.Length + 1;
        header += new string(' ', (64 - total % 64) % 64) + "\n";
        var bytes = new byte[10 + header.Length + data.Length * 4];
        Magic.CopyTo(bytes, 0);
        bytes[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)header.Length);
        Encoding.ASCII.GetBytes(header, bytes.AsSpan(10));
        var body = bytes.AsSpan(10 + header.Length);
        for (var i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(body[(i * 4)..], data[i]);
        Imaging.AtomicFile.Write(path, bytes, overwrite);
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
