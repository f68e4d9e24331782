using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using LocalDiffusion.Adapters;

namespace LocalDiffusion.Tests.Adapters;

public sealed class LoraSafetensorsFileTests
{
    private static string Lora(string name) => Path.Combine(TestPaths.ModelsDir, "test", "lora", name);

    [Fact]
    public void ReadsKohyaFp16Bf16AndPeftFp32FilesToTheSameValues()
    {
        using var f16 = SafetensorsFile.Open(Lora("kohya_fp16.safetensors"));
        using var bf16 = SafetensorsFile.Open(Lora("kohya_bf16.safetensors"));
        using var f32 = SafetensorsFile.Open(Lora("peft_fp32.safetensors"));
        Assert.Equal("networks.lora", f16.Metadata["ss_network_module"]);
        var down = f16.Find("lora_unet_res_high_conv1.lora_down.weight")!;
        Assert.Equal(SafetensorsDType.F16, down.DType);
        Assert.Equal([4L, 32, 3, 3], down.Shape);
        Assert.Equal(f16.ReadFloat32(down), bf16.ReadFloat32("lora_unet_res_high_conv1.lora_down.weight"));
        Assert.Equal(f16.ReadFloat32(down), f32.ReadFloat32("unet.res_high.conv1.lora_A.weight"));
        Assert.Equal(2f, f16.ReadFloat32("lora_unet_cross_q.alpha")[0]);
    }

    private static byte[] File(string header, int dataBytes)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return bytes;
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "truncated")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 12 bytes")]
    [InlineData("""{"a":{"dtype":"I8","shape":[8],"data_offsets":[0,8]}}""", 8, "dtype \"I8\" is not supported")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlap")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", 16, "twice")]
    [InlineData("""{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[1],"data_offsets":[2,4]}}""", 4, "overlap")]
    [InlineData("""{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}""", 6, "misaligned")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}""", 8, "not valid UTF-8 JSON")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 12, "belong to no key")]
    public void RefusesBadFilesNamingFileKeyAndOffset(string header, int dataBytes, string expected)
    {
        var path = TestPaths.WriteTempFile(File(header, dataBytes), ".safetensors");
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith(path, e.Message);
        Assert.NotNull(e.Offset);
        Assert.Contains("byte offset", e.Message);
    }

    [Fact]
    public void RefusesAnAbsurdHeaderLength()
    {
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 200_000_000);
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(TestPaths.WriteTempFile(bytes, ".safetensors")));
        Assert.Contains("over the 100000000-byte limit", e.Message);
    }

    // Mutations of a real file (truncations, random bytes in the length and the header, random bytes anywhere): the reader
    // either reads every tensor or throws its own exception, never another type, and never hangs.
    [Fact]
    public void FuzzedFilesGiveOnlySafetensorsExceptions()
    {
        var original = System.IO.File.ReadAllBytes(Lora("kohya_fp16.safetensors"));
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        var random = new Random(20251206);
        var clock = Stopwatch.StartNew();
        int refused = 0, read = 0;
        for (var i = 0; i < 600; i++)
        {
            var bytes = (byte[])original.Clone();
            switch (i % 4)
            {
                case 0: bytes = bytes[..random.Next(bytes.Length)]; break;
                case 1: bytes[random.Next(8)] = (byte)random.Next(256); break;
                case 2:
                    for (var k = 0; k < 1 + random.Next(4); k++) bytes[8 + random.Next(headerLength)] = (byte)random.Next(256);
                    break;
                default:
                    for (var k = 0; k < 1 + random.Next(8); k++) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                    break;
            }
            var path = TestPaths.WriteTempFile(bytes, ".safetensors");
            try
            {
                using var file = SafetensorsFile.Open(path);
                foreach (var entry in file.Entries) file.ReadFloat32(entry);
                read++;
            }
            catch (SafetensorsException e)
            {
                Assert.Contains(path, e.Message);
                refused++;
            }
            finally
            {
                System.IO.File.Delete(path);
            }
        }
        Assert.True(refused > 300, $"only {refused} of 600 mutations were refused");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
    }
}
