using LocalDiffusion.Pipeline;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.Families;

/// <summary>
/// SD 3/FLUX img2img and inpainting end to end from a real PNG (models/shapes/samples.png), and the request rules the
/// orchestrator applies to them. The tiny models' VAE is untrained, so its round trip is not the picture: closeness is
/// measured against that round trip, approximated by the lowest-strength run (one step at the schedule's last σ).
/// </summary>
public sealed class FlowImageToImageTests
{
    private static readonly string Png = Path.Combine(TestPaths.ModelsDir, "shapes", "samples.png");

    private static StableDiffusionPipeline Load(string name) =>
        StableDiffusionPipeline.Load(Path.Combine(TestPaths.ModelsDir, "test", name), new PipelineOptions { Device = "cpu" });

    private static double MeanDifference(byte[] a, byte[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Average();

    [Fact]
    public async Task Img2img_from_a_png_stays_near_the_picture_at_low_strength_and_leaves_it_at_full_strength()
    {
        using var pipeline = Load("tiny-sd3");
        var request = new GenerationRequest { Prompt = "shapes", InitImage = InitImage.FromPng(Png), Width = 128, Height = 64, Seed = 5, Steps = 20 };
        var roundTrip = (await pipeline.GenerateAsync(request with { Strength = 0.01f })).Images[0].Rgb;
        var low = await pipeline.GenerateAsync(request with { Strength = 0.2f });
        var full = await pipeline.GenerateAsync(request with { Strength = 1f });
        Assert.Equal((128, 64), (low.Images[0].Width, low.Images[0].Height));
        Assert.Equal(20 - (int)(20 - 20 * 0.2), low.UnetEvaluations);
        double near = MeanDifference(low.Images[0].Rgb, roundTrip), far = MeanDifference(full.Images[0].Rgb, roundTrip);
        // Measured: 22.0 and 39.9 levels (of 255). The low-strength run keeps the picture's layout that full strength drops.
        Assert.True(near < 0.75 * far, $"mean |Δ| from the round trip: strength 0.2 {near:F1}, strength 1 {far:F1}");
    }

    [Fact]
    public async Task Inpainting_from_a_png_keeps_the_unmasked_pixels_and_repaints_the_masked_ones()
    {
        using var pipeline = Load("tiny-flux-schnell");
        var picture = InitImage.FromPng(Png).Resize(128, 64);
        var rgb = new byte[128 * 64 * 3];
        for (var y = 0; y < 64; y++)
            rgb.AsSpan((y * 128 + 64) * 3, 64 * 3).Fill(255); // repaint the right half
        var result = await pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = "shapes", InitImage = picture, MaskImage = new InitImage(128, 64, rgb), Strength = 1f, Seed = 9,
        });
        var image = result.Images[0].Rgb;
        double kept = 0, repainted = 0;
        for (var y = 0; y < 64; y++)
            for (var x = 0; x < 128; x++)
                for (var c = 0; c < 3; c++)
                {
                    var k = (y * 128 + x) * 3 + c;
                    if (x < 64) kept += Math.Abs(image[k] - picture.Rgb[k]);
                    else repainted += Math.Abs(image[k] - picture.Rgb[k]);
                }
        Assert.Equal(0, kept);
        // Measured: 105 levels on average; an untouched right half would give 0.
        Assert.True(repainted / (64 * 64 * 3) > 10, $"the repainted half moved only {repainted / (64 * 64 * 3):F1} levels");
    }

    [Fact]
    public async Task Size_defaults_to_the_picture_rounded_down_to_16_and_strength_to_diffusers_0_6()
    {
        using var pipeline = Load("tiny-flux-schnell");
        var odd = InitImage.FromPng(Png).Resize(100, 70);
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "shapes", InitImage = odd, Steps = 5, Seed = 1 });
        Assert.Equal((96, 64), (result.Images[0].Width, result.Images[0].Height));
        // FluxImg2ImgPipeline's get_timesteps at strength 0.6: t_start = int(5 − 3) = 2, so 3 of 5 steps run.
        Assert.Equal(3, result.UnetEvaluations);
    }

    [Fact]
    public async Task Requests_that_cannot_run_are_refused_naming_the_field()
    {
        using var pipeline = Load("tiny-sd3");
        var picture = InitImage.FromPng(Png).Resize(64, 64);
        var strength = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() =>
            pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", InitImage = picture, Strength = 0f }));
        Assert.Equal("Strength", strength.ParamName);
        var mask = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() =>
            pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", MaskImage = picture, Width = 64, Height = 64 }));
        Assert.Equal("MaskImage", mask.ParamName);
        var latents = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() =>
            pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", InitLatents = new float[4 * 8 * 8], Width = 64, Height = 64 }));
        Assert.Equal("InitLatents", latents.ParamName);
        Assert.Contains("img2img", pipeline.Info.Tasks);
        Assert.Contains("inpainting", pipeline.Info.Tasks);
    }
}
