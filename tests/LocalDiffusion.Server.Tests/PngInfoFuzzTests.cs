using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using LocalDiffusion.Imaging;
using LocalDiffusion.Server.Automatic1111;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// Seeded fuzzing of <c>/sdapi/v1/png-info</c>'s readers. <see cref="PngTextReader"/> gets PNGs rebuilt from a real one
/// (Images.Png + PngTextChunks) with random text chunks whose CRCs are right (so the parsing behind the CRC check is
/// reached: keywords, NULs, compression flags, deflate streams, cut or garbage), and with lengths, types and bytes
/// corrupted; only <see cref="InvalidDataException"/> may come out. <see cref="InfotextParser"/> gets mutations of a real
/// A1111 infotext (quotes, backslashes, huge numbers, escaped lone surrogates, long lines); it must return, and what it returns
/// must serialise as the endpoint's JSON. Hangs are ruled out by input size: the long-line cases are linear-time only.
/// LOCALDIFFUSION_FUZZ_SCALE multiplies the case count, LOCALDIFFUSION_FUZZ_SEED changes the cases.
/// </summary>
public sealed class PngInfoFuzzTests
{
    private static readonly int Scale = int.TryParse(Environment.GetEnvironmentVariable("LOCALDIFFUSION_FUZZ_SCALE"), out var s) && s > 0 ? s : 1;

    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("LOCALDIFFUSION_FUZZ_SEED"), out var seed) ? seed : 20261207;

    // A real A1111 1.x infotext (as its processing.create_infotext writes it).
    private const string Infotext = """
        masterpiece, (a cat:1.2) on a mat, <lora:cat:0.8>
        Negative prompt: blurry, "lowres"
        Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: 6ce0161689, Model: v1-5, Lora hashes: "cat: 1a2b3c", Version: v1.10.1
        """;

    private static readonly string[] Pieces =
        ["\"", "\\", "\\\"", ",", ":", "\n", "\r\n", "Negative prompt:", " Key: ", "1", "99999999999999999999999999999", "1e400", "-", ".", "x",
            "\u0000", "é", "🎨", "\\u", "\\ud800", "\"\\ud800\"", new string('9', 400), "512x" + new string('7', 400)];

    [Fact]
    public void RandomTextChunksGiveTextsOrInvalidDataExceptionsOnly()
    {
        var random = new Random(Seed);
        var png = Images.Png(8, 8, (_, _) => (10, 20, 30, 255));
        int read = 0, refused = 0;
        for (var i = 0; i < 600 * Scale; i++)
        {
            var bytes = png;
            for (var c = random.Next(1, 4); c > 0; c--) bytes = InsertChunk(bytes, RandomChunkType(random), RandomChunkData(random));
            bytes = Corrupt(random, bytes);
            try
            {
                foreach (var text in PngTextReader.Read(bytes).Values) ParseAndSerialise(text);
                read++;
            }
            catch (InvalidDataException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                refused++;
            }
        }
        // Both outcomes must be reached, or the fuzzing only exercised one path.
        Assert.True(read > 60 && refused > 60, $"{read} read, {refused} refused");
    }

    [Fact]
    public void MutatedInfotextsParseAndSerialise()
    {
        var random = new Random(Seed);
        for (var i = 0; i < 2000 * Scale; i++)
        {
            var text = new StringBuilder(Infotext);
            for (var m = random.Next(1, 6); m > 0; m--)
            {
                var at = random.Next(text.Length + 1);
                switch (random.Next(3))
                {
                    case 0: text.Insert(at, Pieces[random.Next(Pieces.Length)]); break;
                    case 1: if (at < text.Length) text.Remove(at, Math.Min(random.Next(1, 20), text.Length - at)); break;
                    // Any character a PNG's Latin-1 or UTF-8 text can decode to (no lone surrogates).
                    default: text.Insert(at, char.ConvertFromUtf32(random.Next(2) == 0 ? random.Next(0x20, 0xD800) : random.Next(0xE000, 0x110000))); break;
                }
            }
            // A cut may split a surrogate pair; text read from a PNG never has half a pair (its UTF-8 decode gives U+FFFD).
            ParseAndSerialise(Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text.ToString())));
        }
    }

    [Theory]
    [InlineData("a")]          // a key that never meets its colon
    [InlineData("a:\"")]       // a quote that never closes
    [InlineData("a: 1, ")]     // settings without end
    [InlineData("\\\"")]
    public void LongLinesParseInTimeLinearInTheirLength(string unit)
    {
        // 8 MiB is the most a zTXt chunk may inflate to (PngTextReader); a backtracking parse quadratic in the line's length
        // would not finish on it. Half a million characters keep the test short while still ruling that out.
        var line = string.Concat(Enumerable.Repeat(unit, 500_000 / unit.Length));
        ParseAndSerialise("prompt\n" + line);
        ParseAndSerialise(line);
    }

    private static void ParseAndSerialise(string text)
    {
        var parsed = InfotextParser.Parse(text);
        Assert.True(parsed.ContainsKey("Prompt") && parsed.ContainsKey("Negative prompt"));
        // The endpoint answers with these values as JSON: a value JSON cannot hold (±∞, NaN) would fail the response.
        JsonSerializer.Serialize(new { info = text, parameters = parsed });
    }

    private static string RandomChunkType(Random random) =>
        random.Next(8) switch { 0 => "IHDR", 1 => "IEND", 2 => "abcd", 3 => "zTXt", 4 => "iTXt", _ => "tEXt" };

    private static byte[] RandomChunkData(Random random)
    {
        var keyword = random.Next(6) switch { 0 => "", 1 => new string('k', 80), 2 => "Comment", _ => "parameters" };
        var text = Encoding.UTF8.GetBytes(random.Next(3) == 0 ? Pieces[random.Next(Pieces.Length)] : Infotext);
        var compressed = random.Next(4) switch { 0 => text, 1 => Deflate(text)[..random.Next(Deflate(text).Length + 1)], 2 => RandomBytes(random, 40), _ => Deflate(text) };
        byte[] data = random.Next(4) switch
        {
            0 => [.. Encoding.Latin1.GetBytes(keyword), 0, .. text],
            1 => [.. Encoding.Latin1.GetBytes(keyword), 0, (byte)random.Next(3), .. compressed],
            2 => [.. Encoding.Latin1.GetBytes(keyword), 0, (byte)random.Next(3), (byte)random.Next(2), .. "en"u8, 0, .. random.Next(2) == 0 ? [] : "Titel"u8.ToArray(), 0, .. compressed],
            _ => RandomBytes(random, random.Next(0, 64)),
        };
        return data;
    }

    // Now and then the bytes are damaged after the CRCs were computed: a length, a type, a byte, a cut.
    private static byte[] Corrupt(Random random, byte[] png)
    {
        var bytes = (byte[])png.Clone();
        switch (random.Next(8))
        {
            case 0: BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(33), (uint)random.Next() | (random.Next(2) == 0 ? 0x80000000u : 0)); break;
            case 1: bytes[random.Next(bytes.Length)] = (byte)random.Next(256); break;
            case 2: bytes = bytes[..random.Next(bytes.Length)]; break;
        }
        return bytes;
    }

    private static byte[] RandomBytes(Random random, int n)
    {
        var bytes = new byte[n];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Deflate(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var z = new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true)) z.Write(bytes);
        return output.ToArray();
    }

    // A chunk with a correct CRC, right after IHDR (8 + 25 bytes in).
    private static byte[] InsertChunk(byte[] png, string type, byte[] data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes(type).CopyTo(chunk, 4);
        data.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), System.IO.Hashing.Crc32.HashToUInt32(chunk.AsSpan(4, 4 + data.Length)));
        return [.. png[..33], .. chunk, .. png[33..]];
    }
}
