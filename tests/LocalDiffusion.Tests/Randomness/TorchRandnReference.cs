using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using LocalDiffusion.Randomness;

namespace LocalDiffusion.Tests.Randomness;

/// <summary>
/// TestData/Randomness/torch_randn.json, written by tools/torch_rng_reference.py with Debian's python3-torch 1.13 on
/// x86 (glibc), once per torch CPU kernel ("avx2" and "default", forced with ATEN_CPU_CAPABILITY): float32
/// torch.randn bit patterns per seed and size, and runs of consecutive draws on one generator. Expected values are
/// compared bit for bit (tolerance: none).
/// </summary>
internal static class TorchRandnReference
{
    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Randomness", "torch_randn.json"))));

    /// <summary>The JSON section for a kernel: "avx2" or "default".</summary>
    public static JsonElement Kernel(TorchCpuKernel kernel) =>
        Document.Value.RootElement.GetProperty("kernels").GetProperty(kernel.ToString().ToLowerInvariant());

    /// <summary>Fails with the first differing index when <paramref name="actual"/> is not the recorded draw.</summary>
    public static void AssertSameBits(JsonElement draw, ReadOnlySpan<float> actual, string what)
    {
        var count = draw.GetProperty("count").GetInt32();
        Assert.Equal(count, actual.Length);
        if (draw.TryGetProperty("bits", out var bits))
        {
            AssertSlice(bits, actual, 0, what);
            return;
        }
        var first = draw.GetProperty("first");
        var last = draw.GetProperty("last");
        AssertSlice(first, actual[..first.GetArrayLength()], 0, what);
        AssertSlice(last, actual[^last.GetArrayLength()..], count - last.GetArrayLength(), what);
        var bytes = new byte[actual.Length * sizeof(float)];
        for (var i = 0; i < actual.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), actual[i]);
        Assert.True(
            Convert.ToHexStringLower(SHA256.HashData(bytes)) == draw.GetProperty("sha256").GetString(),
            $"{what}: first and last values match torch but the SHA-256 of all {count} values does not");
    }

    private static void AssertSlice(JsonElement expected, ReadOnlySpan<float> actual, int offset, string what)
    {
        for (var i = 0; i < actual.Length; i++)
        {
            var want = expected[i].GetString();
            var got = BitConverter.SingleToUInt32Bits(actual[i]).ToString("x8");
            if (want != got)
                Assert.Fail($"{what}: value {offset + i} is {actual[i]:R} (0x{got}), torch gives "
                    + $"{BitConverter.UInt32BitsToSingle(Convert.ToUInt32(want, 16)):R} (0x{want})");
        }
    }
}
