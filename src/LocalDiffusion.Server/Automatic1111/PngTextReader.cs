using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// Reads a PNG's text chunks (tEXt, zTXt, iTXt) strictly: the signature, IHDR first, every chunk inside the file with a
/// correct CRC, and IEND at the end; anything else is an <see cref="InvalidDataException"/> saying what is wrong.
/// </summary>
internal static class PngTextReader
{
    private static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    // A compressed chunk may not inflate past this: text is kilobytes, and a zip bomb must not fill the memory.
    private const int MaxInflatedBytes = 8 << 20;

    /// <summary>Keyword → text, in file order (a repeated keyword keeps its last text).</summary>
    public static Dictionary<string, string> Read(ReadOnlySpan<byte> png)
    {
        if (png.Length < Signature.Length || !png[..Signature.Length].SequenceEqual(Signature))
            throw new InvalidDataException("not a PNG file (the PNG signature is missing)");
        var texts = new Dictionary<string, string>(StringComparer.Ordinal);
        var pos = Signature.Length;
        var first = true;
        while (true)
        {
            if (png.Length - pos < 12) throw new InvalidDataException($"the PNG is truncated at byte {pos} (no IEND chunk)");
            var length = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            if (length > int.MaxValue || length > (uint)(png.Length - pos - 12))
                throw new InvalidDataException($"the chunk at byte {pos} claims {length} bytes, more than the file holds");
            var typeAndData = png.Slice(pos + 4, 4 + (int)length);
            var type = Encoding.ASCII.GetString(typeAndData[..4]);
            if (BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 8 + (int)length)..]) != Crc(typeAndData))
                throw new InvalidDataException($"the {type} chunk at byte {pos} has a wrong CRC (the file is corrupt)");
            if (first && type != "IHDR") throw new InvalidDataException("the PNG does not start with an IHDR chunk");
            first = false;
            var data = typeAndData[4..];
            switch (type)
            {
                case "IEND":
                    return texts;
                case "tEXt":
                {
                    var keyword = Keyword(data, type, out var rest);
                    texts[keyword] = Encoding.Latin1.GetString(rest);
                    break;
                }
                case "zTXt":
                {
                    var keyword = Keyword(data, type, out var rest);
                    if (rest.Length < 1 || rest[0] != 0) throw new InvalidDataException($"the zTXt chunk '{keyword}' uses an unknown compression method");
                    texts[keyword] = Encoding.Latin1.GetString(Inflate(rest[1..], keyword));
                    break;
                }
                case "iTXt":
                {
                    // keyword NUL, compression flag, method, language tag NUL, translated keyword NUL, UTF-8 text
                    var keyword = Keyword(data, type, out var rest);
                    if (rest.Length < 2 || rest[0] > 1 || rest[1] != 0) throw new InvalidDataException($"the iTXt chunk '{keyword}' has a bad compression flag or method");
                    var compressed = rest[0] == 1;
                    rest = SkipNulTerminated(SkipNulTerminated(rest[2..], keyword), keyword);
                    texts[keyword] = Encoding.UTF8.GetString(compressed ? Inflate(rest, keyword) : rest);
                    break;
                }
            }
            pos += 12 + (int)length;
        }
    }

    private static string Keyword(ReadOnlySpan<byte> data, string type, out ReadOnlySpan<byte> rest)
    {
        var nul = data.IndexOf((byte)0);
        if (nul is < 1 or > 79) throw new InvalidDataException($"a {type} chunk has no keyword of 1 to 79 bytes");
        rest = data[(nul + 1)..];
        return Encoding.Latin1.GetString(data[..nul]);
    }

    private static ReadOnlySpan<byte> SkipNulTerminated(ReadOnlySpan<byte> data, string keyword)
    {
        var nul = data.IndexOf((byte)0);
        if (nul < 0) throw new InvalidDataException($"the iTXt chunk '{keyword}' is cut short");
        return data[(nul + 1)..];
    }

    private static byte[] Inflate(ReadOnlySpan<byte> compressed, string keyword)
    {
        using var input = new ZLibStream(new MemoryStream(compressed.ToArray()), CompressionMode.Decompress);
        using var output = new MemoryStream();
        var buffer = new byte[16 * 1024];
        while (true)
        {
            int read;
            try
            {
                read = input.Read(buffer);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"the compressed text chunk '{keyword}' is corrupt", e);
            }
            if (read == 0) return output.ToArray();
            if (output.Length + read > MaxInflatedBytes) throw new InvalidDataException($"the text chunk '{keyword}' inflates to more than {MaxInflatedBytes >> 20} MiB");
            output.Write(buffer, 0, read);
        }
    }

    // PNG's CRC is the standard CRC-32 (ISO 3309, as zlib's).
    private static uint Crc(ReadOnlySpan<byte> bytes) => System.IO.Hashing.Crc32.HashToUInt32(bytes);
}
