using System.Text.Json;

namespace LocalDiffusion.Server.Tests;

/// <summary>A1111's hires fix (txt2img's enable_hr) on the shapes model: 64×64 first pass, 128×128 result (its cap).</summary>
public sealed class HiresFixTests(SharedServer shared, ITestOutputHelper output) : IClassFixture<SharedServer>
{
    private HttpClient Http => shared.Instance.Http;

    private const string Prompt = "a large red circle in the center on a blue background";

    [Theory]
    [InlineData("Latent")]
    [InlineData("Latent (bicubic antialiased)")]
    [InlineData("Lanczos")]
    [InlineData("Nearest")]
    public async Task Hires_enlarges_the_first_pass_and_redraws_it(string upscaler)
    {
        var first = await Txt2ImgAsync(new { prompt = Prompt, seed = 5, steps = 8, width = 64, height = 64 });
        var (images, info) = await Txt2ImgAsync(new
        {
            prompt = Prompt, seed = 5, steps = 8, width = 64, height = 64,
            enable_hr = true, hr_scale = 2, hr_upscaler = upscaler, denoising_strength = 0.5,
        });
        var png = Assert.Single(images);
        var picture = Images.Decode(png);
        Assert.Equal((128, 128), (picture.Width, picture.Height));
        var infotext = info.GetProperty("infotexts")[0].GetString()!;
        Assert.Equal(infotext, Images.PngText(png, "parameters"));
        // A1111's infotext: the first pass's steps and size, then the hires fields.
        Assert.Contains("Steps: 8,", infotext);
        Assert.Contains("Size: 64x64", infotext);
        Assert.Contains("Denoising strength: 0.5", infotext);
        Assert.Contains("Hires upscale: 2", infotext);
        Assert.Contains($"Hires upscaler: {upscaler}", infotext);
        Assert.Equal(0.5, info.GetProperty("denoising_strength").GetDouble(), 3);
        Assert.Equal(upscaler, info.GetProperty("extra_generation_params").GetProperty("Hires upscaler").GetString());

        // The same picture redrawn at twice the size: halved, it is close to the first pass, but the second pass changed it.
        var difference = MeanDifference(Halve(picture.Rgb, 128), Images.Decode(first.Images[0]).Rgb);
        output.WriteLine($"{upscaler}: mean |halved hires − first pass| = {difference:0.00} levels");
        // For scale: an unrelated picture differs from the first pass by far more.
        var other = await Txt2ImgAsync(new { prompt = "a small green square on the left on a yellow background", seed = 9, steps = 8, width = 64, height = 64 });
        var unrelated = MeanDifference(Images.Decode(other.Images[0]).Rgb, Images.Decode(first.Images[0]).Rgb);
        output.WriteLine($"unrelated picture: {unrelated:0.00} levels");
        Assert.InRange(difference, 0.01, 16);
        Assert.True(difference * 3 < unrelated, $"hires differs by {difference:0.00} levels, an unrelated picture by {unrelated:0.00}");
    }

    [Fact]
    public async Task Hires_resize_and_second_pass_steps_are_honoured()
    {
        var (images, info) = await Txt2ImgAsync(new
        {
            prompt = Prompt, seed = 2, steps = 4, width = 64, height = 64,
            enable_hr = true, hr_resize_x = 128, hr_resize_y = 0, hr_second_pass_steps = 3, hr_upscaler = "Latent (nearest-exact)",
        });
        var picture = Images.Decode(Assert.Single(images));
        Assert.Equal((128, 128), (picture.Width, picture.Height)); // hr_resize_y 0 keeps the aspect ratio
        var infotext = info.GetProperty("infotexts")[0].GetString()!;
        Assert.Contains("Hires resize: 128x0", infotext);
        Assert.Contains("Hires steps: 3", infotext);
        Assert.Contains("Denoising strength: 0.7", infotext); // A1111's hires default
        Assert.Equal(3, info.GetProperty("extra_generation_params").GetProperty("Hires steps").GetInt32());
    }

    [Fact]
    public async Task Hires_refusals_name_the_field()
    {
        await AssertRefusedAsync(new { prompt = "x", steps = 1, width = 64, height = 64, enable_hr = true, hr_upscaler = "R-ESRGAN 4x+" }, "hr_upscaler");
        // 256×256 is over the shapes model's cap (4× its 64×64 area), refused before any work.
        await AssertRefusedAsync(new { prompt = "x", steps = 1, width = 64, height = 64, enable_hr = true, hr_scale = 4 }, "hr_scale");
        await AssertRefusedAsync(new { prompt = "x", steps = 1, width = 64, height = 64, enable_hr = true, hr_resize_x = 256 }, "hr_resize_x");
        await AssertRefusedAsync(new { prompt = "x", steps = 1, width = 64, height = 64, enable_hr = true, denoising_strength = 0 }, "denoising_strength");
    }

    private async Task AssertRefusedAsync(object body, string field)
    {
        using var response = await Json.PostAsync(Http, "sdapi/v1/txt2img", body);
        var error = Json.Error(await Json.ReadAsync(response, 400));
        Assert.Equal(field, error.GetProperty("param").GetString());
        Assert.Equal("HTTPException", error.GetProperty("a1111_error").GetString());
    }

    private async Task<(List<byte[]> Images, JsonElement Info)> Txt2ImgAsync(object body)
    {
        using var response = await Json.PostAsync(Http, "sdapi/v1/txt2img", body);
        var json = await Json.ReadAsync(response, 200);
        var images = json.GetProperty("images").EnumerateArray().Select(i => Convert.FromBase64String(i.GetString()!)).ToList();
        return (images, JsonDocument.Parse(json.GetProperty("info").GetString()!).RootElement);
    }

    // 2×2 box average of an RGB picture size×size.
    private static byte[] Halve(byte[] rgb, int size)
    {
        var half = size / 2;
        var result = new byte[half * half * 3];
        for (var y = 0; y < half; y++)
            for (var x = 0; x < half; x++)
                for (var c = 0; c < 3; c++)
                {
                    var sum = 0;
                    for (var dy = 0; dy < 2; dy++)
                        for (var dx = 0; dx < 2; dx++)
                            sum += rgb[((2 * y + dy) * size + 2 * x + dx) * 3 + c];
                    result[(y * half + x) * 3 + c] = (byte)((sum + 2) / 4);
                }
        return result;
    }

    private static double MeanDifference(byte[] a, byte[] b) => a.Zip(b, (p, q) => (double)Math.Abs(p - q)).Average();
}
