using System.Buffers.Binary;
using System.Text;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Imaging;

/// <summary>
/// Adds text chunks to an encoded PNG (right after IHDR), the way PIL's PngInfo does for AUTOMATIC1111's
/// <c>parameters</c>: tEXt when the text is Latin-1, iTXt (UTF-8) otherwise.
/// </summary>
public static class PngTextChunks
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Returns <paramref name="png"/> with one text chunk per entry inserted after the IHDR chunk.</summary>
    public static byte[] Insert(byte[] png, IReadOnlyDictionary<string, string> texts)
    {
        ArgumentNullException.ThrowIfNull(png);
        ArgumentNullException.ThrowIfNull(texts);
        if (png.Length < 33 || !png.AsSpan(0, 8).SequenceEqual(Signature))
            throw new InvalidRequestException(nameof(png), null, null, "Not a PNG: the 8-byte PNG signature is missing.");
        var ihdrEnd = 8 + 8 + (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(8)) + 4;
        using var output = new MemoryStream(png.Length + 256);
        output.Write(png, 0, ihdrEnd);
        foreach (var (keyword, text) in texts)
            WriteChunk(output, keyword, text);
        output.Write(png, ihdrEnd, png.Length - ihdrEnd);
        return output.ToArray();
    }

    /// <summary>Reads the tEXt and iTXt chunks of a PNG (keyword → text).</summary>
    public static Dictionary<string, string> Read(byte[] png)
    {
        ArgumentNullException.ThrowIfNull(png);
        var result = new Dictionary<string, string>();
        for (var pos = 8; pos + 12 <= png.Length;)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            var type = Encoding.ASCII.GetString(png, pos + 4, 4);
            var data = png.AsSpan(pos + 8, length);
            var nul = data.IndexOf((byte)0);
            if (type == "tEXt" && nul > 0)
                result[Encoding.Latin1.GetString(data[..nul])] = Encoding.Latin1.GetString(data[(nul + 1)..]);
            else if (type == "iTXt" && nul > 0)
            {
                // keyword NUL compression-flag compression-method language NUL translated-keyword NUL text
                var rest = data[(nul + 3)..];
                var lang = rest.IndexOf((byte)0);
                var translated = rest[(lang + 1)..].IndexOf((byte)0);
                result[Encoding.Latin1.GetString(data[..nul])] = Encoding.UTF8.GetString(rest[(lang + 1 + translated + 1)..]);
            }
            pos += 12 + length;
        }
        return result;
    }

    private static void WriteChunk(Stream output, string keyword, string text)
    {
        if (keyword.Length is 0 or > 79 || keyword.Any(c => c > 0xFF || c == 0))
            throw new InvalidRequestException(nameof(keyword), null, null, $"PNG text {nameof(keyword)} '{keyword}' must be 1-79 Latin-1 characters.");
        var latin1 = text.All(c => c <= 0xFF);
        var data = new List<byte>(Encoding.Latin1.GetBytes(keyword)) { 0 };
        if (latin1)
        {
            data.AddRange(Encoding.Latin1.GetBytes(text));
        }
        else
        {
            data.AddRange([0, 0, 0, 0]); // uncompressed, method 0, no language tag, no translated keyword
            data.AddRange(Encoding.UTF8.GetBytes(text));
        }
        var type = Encoding.ASCII.GetBytes(latin1 ? "tEXt" : "iTXt");
        Span<byte> header = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(header, (uint)data.Count);
        output.Write(header);
        var body = new byte[4 + data.Count];
        type.CopyTo(body, 0);
        data.CopyTo(body, 4);
        output.Write(body);
        BinaryPrimitives.WriteUInt32BigEndian(header, Crc(body));
        output.Write(header);
    }

    // PNG's CRC is the standard CRC-32 (ISO 3309, as zlib's).
    private static uint Crc(ReadOnlySpan<byte> bytes) => System.IO.Hashing.Crc32.HashToUInt32(bytes);
}
