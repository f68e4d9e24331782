using System.Text.Json;
using LocalDiffusion.Upscaling;

namespace LocalDiffusion.Tests.Upscaling;

/// <summary>
/// The hires fix's latent enlargement against torch 1.13's <c>F.interpolate</c> (align_corners False), which A1111 calls:
/// TestData/Upscaling/torch_latent_resize.json from tools/build_esrgan_test_models.py. Tolerance 1e-5 (float32 sums in
/// another order; the latents are unit-variance).
/// </summary>
public class LatentResizeTests
{
    private static readonly Dictionary<string, LatentUpscaleMode> Modes = new()
    {
        ["bilinear"] = LatentUpscaleMode.Bilinear,
        // Antialiasing changes only a shrink for bilinear (A1111's "Latent (antialiased)" is the same enlargement).
        ["bilinear antialiased"] = LatentUpscaleMode.Bilinear,
        ["bicubic"] = LatentUpscaleMode.Bicubic,
        ["bicubic antialiased"] = LatentUpscaleMode.BicubicAntialiased,
        ["nearest"] = LatentUpscaleMode.Nearest,
        ["nearest-exact"] = LatentUpscaleMode.NearestExact,
    };

    public static TheoryData<string, int, int> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Upscaling", "torch_latent_resize.json")));
        var data = new TheoryData<string, int, int>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
            data.Add(c.GetProperty("mode").GetString()!, c.GetProperty("to_height").GetInt32(), c.GetProperty("to_width").GetInt32());
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_torch_interpolate(string mode, int toH, int toW)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Upscaling", "torch_latent_resize.json")));
        var root = doc.RootElement;
        var latents = root.GetProperty("latents").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var expected = root.GetProperty("cases").EnumerateArray()
            .Single(c => c.GetProperty("mode").GetString() == mode && c.GetProperty("to_height").GetInt32() == toH && c.GetProperty("to_width").GetInt32() == toW)
            .GetProperty("expected").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var actual = LatentResize.Resize(latents, 4, 5, 7, toH, toW, Modes[mode]);
        var max = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(max <= 1e-5, $"{mode} to {toH}x{toW}: max |engine − torch| = {max:E2}");
    }

    [Fact]
    public void A1111_latent_upscaler_names_map_to_modes()
    {
        Assert.Equal(LatentUpscaleMode.Bilinear, LatentResize.Modes["Latent"]);
        Assert.Equal(LatentUpscaleMode.BicubicAntialiased, LatentResize.Modes["Latent (bicubic antialiased)"]);
        Assert.Equal(LatentUpscaleMode.NearestExact, LatentResize.Modes["Latent (nearest-exact)"]);
        Assert.Equal(6, LatentResize.Modes.Count);
    }
}
