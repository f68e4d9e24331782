using System.Text.Json;
using LocalDiffusion.Imaging;
using LocalDiffusion.Upscaling;

namespace LocalDiffusion.Tests.Upscaling;

/// <summary>
/// The Lanczos resampler against Pillow 9.4's <c>Image.resize(size, Image.LANCZOS)</c>: TestData/Imaging/pil_lanczos.json
/// was written by tools/build_esrgan_test_models.py. Tolerance 0: the fixed-point arithmetic is Pillow's, so every byte matches.
/// </summary>
public class LanczosResamplerTests
{
    public static TheoryData<string> Cases() => [.. Load().Select(c => c.GetProperty("name").GetString()!)];

    private static List<JsonElement> Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Imaging", "pil_lanczos.json")));
        return [.. doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.Clone())];
    }

    private static (byte[] Pixels, int W, int H, int Channels, byte[] Expected, int ToW, int ToH) Case(string name)
    {
        var c = Load().Single(e => e.GetProperty("name").GetString() == name);
        static byte[] Bytes(JsonElement a) => [.. a.EnumerateArray().Select(v => (byte)v.GetInt32())];
        return (Bytes(c.GetProperty("pixels")), c.GetProperty("width").GetInt32(), c.GetProperty("height").GetInt32(),
            c.GetProperty("mode").GetString() == "L" ? 1 : 3, Bytes(c.GetProperty("expected")),
            c.GetProperty("to_width").GetInt32(), c.GetProperty("to_height").GetInt32());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_pillow_byte_for_byte(string name)
    {
        var (pixels, w, h, channels, expected, toW, toH) = Case(name);
        var actual = LanczosResampler.Resize(pixels, w, h, channels, toW, toH);
        Assert.Equal(expected, actual);
    }

    // Issue #20: an init image of another size is resized as diffusers' VaeImageProcessor.resize does (PIL Lanczos), not by
    // SkiaSharp's Mitchell cubic, so the same seed gives diffusers' latents.
    [Fact]
    public void Init_images_of_another_size_are_resized_as_diffusers_does()
    {
        var (pixels, w, h, _, expected, toW, toH) = Case("init image 64x96 to 64x64");
        var resized = new InitImage(w, h, pixels).Resize(toW, toH);
        Assert.Equal(expected, resized.Rgb);
    }

    [Fact]
    public void Bad_sizes_are_refused_naming_them()
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => LanczosResampler.Resize(new byte[12], 2, 2, 3, 0, 5));
        Assert.Contains("0x5", e.Message);
        e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => LanczosResampler.Resize(new byte[11], 2, 2, 3, 4, 4));
        Assert.Contains("11 bytes", e.Message);
    }
}
