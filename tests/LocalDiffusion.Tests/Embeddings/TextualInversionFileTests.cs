using LocalDiffusion.Adapters;
using LocalDiffusion.Embeddings;

namespace LocalDiffusion.Tests.Embeddings;

/// <summary>
/// The embedding readers on files written as A1111 (torch.save of its dict), kohya (emb_params, float16), diffusers
/// (learned_embeds, .safetensors and torch.save .bin) and kohya's SDXL form (clip_l, clip_g) write them, by
/// tools/build_ti_test_files.py; the expected vectors are the ones that script saved (reference.json "vectors").
/// </summary>
public sealed class TextualInversionFileTests
{
    private static float[] Expected(string name, string set) => TiModels.Floats(TiModels.Reference.GetProperty("vectors").GetProperty(name).GetProperty(set));

    [Theory]
    [InlineData("sd15", "a1111-style.pt", 2, "string_to_param.*")]
    [InlineData("sd15", "kohya-style.safetensors", 3, "emb_params")]
    [InlineData("sd15", "cat-toy.safetensors", 1, "<cat-toy>")]
    [InlineData("sd15", "toy-bin.bin", 1, "<toy>")]
    [InlineData("sd15", "old-paramdict.pt", 1, "string_to_param.*")]
    public void ReadsEachFormatToTheSavedVectors(string part, string file, int vectors, string key)
    {
        var embedding = TextualInversionFile.Load(TiModels.Embedding(part, file));
        Assert.Equal(Path.GetFileNameWithoutExtension(file), embedding.Name);
        Assert.Equal(vectors, embedding.VectorCount);
        Assert.Equal(32, embedding.Width(TextualInversion.Single));
        Assert.Equal(key, embedding.SourceKeys[TextualInversion.Single]);
        // Exact: float32 files hold these values, and the float16 file holds them rounded, as the script stores them.
        Assert.Equal(Expected(embedding.Name, "l"), embedding.Vectors[TextualInversion.Single]);
    }

    [Fact]
    public void ReadsA1111sMetadataAndTheSdxlPair()
    {
        var a1111 = TextualInversionFile.Load(TiModels.Embedding("sd15", "a1111-style.pt"));
        Assert.Equal(1500, a1111.Step);
        Assert.Equal("e1441589", a1111.SdCheckpoint);
        Assert.Equal("tiny-ti", a1111.SdCheckpointName);
        Assert.Equal(32, a1111.Shape);
        var pair = TextualInversionFile.Load(TiModels.Embedding("sdxl", "xl-pair.safetensors"));
        Assert.True(pair.IsSdxlPair);
        Assert.Equal(2, pair.VectorCount);
        Assert.Equal(32 + 48, pair.Shape);
        Assert.Equal(Expected("xl-pair", "l"), pair.Vectors[TextualInversion.ClipL]);
        Assert.Equal(Expected("xl-pair", "g"), pair.Vectors[TextualInversion.ClipG]);
    }

    [Fact]
    public void RefusesUnknownTruncatedLegacyAndCodeRunningFiles()
    {
        var unknown = TestPaths.WriteTempFile([1, 2, 3], ".ckpt");
        Assert.Contains("unknown embedding format \".ckpt\"", Assert.Throws<TextualInversionException>(() => TextualInversionFile.Load(unknown)).Message);

        var bytes = File.ReadAllBytes(TiModels.Embedding("sd15", "a1111-style.pt"));
        var truncated = TestPaths.WriteTempFile(bytes[..(bytes.Length / 2)], ".pt");
        var e = Assert.Throws<TextualInversionException>(() => TextualInversionFile.Load(truncated));
        Assert.StartsWith(truncated, e.Message);

        var legacy = TestPaths.WriteTempFile([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e], ".pt");
        Assert.Contains("legacy (pre-1.6)", Assert.Throws<TextualInversionException>(() => TextualInversionFile.Load(legacy)).Message);

        // A pickle that would call os.system: refused by name, at its offset, and nothing is run.
        var evil = ZipWith("evil/data.pkl", [0x80, 0x02, .. "cos\nsystem\n"u8, (byte)'X', 4, 0, 0, 0, .. "true"u8, 0x85, (byte)'R', (byte)'.']);
        var refused = Assert.Throws<TextualInversionException>(() => TextualInversionFile.Load(evil));
        Assert.Contains("os.system", refused.Message);
        Assert.Contains("byte offset 2 of its evil/data.pkl record", refused.Message);

        var wrongKeys = TestPaths.WriteTempFile(SafetensorsBytes("""{"a":{"dtype":"F32","shape":[1,4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[1,4],"data_offsets":[16,32]}}""", 32), ".safetensors");
        Assert.Contains("not an embedding", Assert.Throws<TextualInversionException>(() => TextualInversionFile.Load(wrongKeys)).Message);
        var badSafetensors = TestPaths.WriteTempFile(SafetensorsBytes("""{"a":{"dtype":"F32","shape":[1,4],"data_offsets":[0,16]}}""", 8), ".safetensors");
        Assert.StartsWith(badSafetensors, Assert.Throws<SafetensorsException>(() => TextualInversionFile.Load(badSafetensors)).Message);
    }

    private static string ZipWith(string entry, byte[] content)
    {
        var path = Path.Combine(Path.GetTempPath(), $"ld-{Guid.NewGuid():N}.pt");
        using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Create))
        using (var stream = zip.CreateEntry(entry, System.IO.Compression.CompressionLevel.NoCompression).Open())
            stream.Write(content);
        return path;
    }

    private static byte[] SafetensorsBytes(string header, int dataBytes)
    {
        var json = System.Text.Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return bytes;
    }

    // As the safetensors reader is fuzzed: truncations and random bytes anywhere (zip headers, the pickle, the storage) give
    // a read embedding or a TextualInversionException naming the file, never another exception or a hang.
    [Fact]
    public void FuzzedTorchFilesGiveOnlyTextualInversionExceptions()
    {
        var original = File.ReadAllBytes(TiModels.Embedding("sd15", "a1111-style.pt"));
        var random = new Random(20261206);
        int refused = 0, read = 0;
        for (var i = 0; i < 600; i++)
        {
            var bytes = (byte[])original.Clone();
            switch (i % 3)
            {
                case 0: bytes = bytes[..random.Next(bytes.Length)]; break;
                case 1:
                    for (var k = 0; k < 1 + random.Next(4); k++) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                    break;
                default:
                    // The pickle's bytes only (stored uncompressed, after its local header): the interpreter's own checks.
                    var at = FindPickle(original);
                    for (var k = 0; k < 1 + random.Next(3); k++) bytes[at + random.Next(341)] = (byte)random.Next(256);
                    break;
            }
            var path = TestPaths.WriteTempFile(bytes, ".pt");
            try
            {
                _ = TextualInversionFile.Load(path);
                read++;
            }
            catch (TextualInversionException e)
            {
                Assert.Contains(path, e.Message);
                refused++;
            }
            finally
            {
                File.Delete(path);
            }
        }
        Assert.True(refused > 300, $"only {refused} of 600 mutations were refused ({read} read)");
    }

    // The pickle starts with PROTO 2 (0x80 0x02) right after the data.pkl entry's name and extra field.
    private static int FindPickle(byte[] file)
    {
        var name = "a1111-style/data.pkl"u8.ToArray();
        var at = file.AsSpan().IndexOf(name) + name.Length;
        return file.AsSpan(at).IndexOf((ReadOnlySpan<byte>)[0x80, 0x02]) + at;
    }
}
