using LocalDiffusion.Pipeline;
using LocalDiffusion.Errors;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.Errors;

/// <summary>
/// An init image smaller than the model's size multiple, with Width/Height unset, has no size "rounded down": it is
/// refused naming InitImage (each front-end's name), with the minimum and the fix, on SD (tiny, multiple 16) and on a
/// flow family (tiny-sd3, multiple 16). Before, such pictures silently became one multiple (16×16).
/// </summary>
public class SmallInitImageTests
{
    private static StableDiffusionPipeline Load(string name) =>
        StableDiffusionPipeline.Load(Path.Combine(TestPaths.ModelsDir, "test", name), new PipelineOptions { Device = "cpu" });

    private static InitImage Grey(int width, int height) => new(width, height, Enumerable.Repeat((byte)128, width * height * 3).ToArray());

    [Theory]
    [InlineData("tiny", 1, 1)]
    [InlineData("tiny", 7, 7)]
    [InlineData("tiny", 64, 7)]
    [InlineData("tiny-sd3", 1, 1)]
    [InlineData("tiny-sd3", 7, 40)]
    public async Task APictureBelowOneMultipleIsRefusedNamingTheInitImage(string model, int width, int height)
    {
        using var pipeline = Load(model);
        Assert.Equal(16, pipeline.Info.SizeMultiple);
        var e = await Assert.ThrowsAsync<InvalidRequestException>(() =>
            pipeline.GenerateAsync(new GenerationRequest { Prompt = "p", InitImage = Grey(width, height), Steps = 2 }));
        Assert.Equal("InitImage", e.Culprit.Field);
        Assert.Equal($"{width}x{height}", e.Culprit.Value);
        Assert.Contains("at least 16x16", e.Message);
        Assert.Contains("give a larger picture or set Width and Height", e.Message);
        Assert.StartsWith($"--init-image is {width}x{height} pixels", RequestFields.MessageFor(e, FrontEnd.Cli));
        Assert.StartsWith("image is", RequestFields.MessageFor(e, FrontEnd.OpenAi));
        Assert.StartsWith("init_images is", RequestFields.MessageFor(e, FrontEnd.Automatic1111));
    }

    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-sd3")]
    public async Task WithWidthAndHeightSetATinyPictureIsStretchedToThem(string model)
    {
        using var pipeline = Load(model);
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "p", InitImage = Grey(7, 7), Width = 32, Height = 16, Steps = 2, Seed = 1 });
        Assert.Equal((32, 16), (result.Images[0].Width, result.Images[0].Height));
    }

    [Fact]
    public async Task APictureOfOneMultipleOrMoreIsRoundedDown()
    {
        using var pipeline = Load("tiny");
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "p", InitImage = Grey(31, 16), Steps = 2, Seed = 1 });
        Assert.Equal((16, 16), (result.Images[0].Width, result.Images[0].Height));
    }

    [Fact]
    public async Task TheCliNamesItsFlagAndWritesNothing()
    {
        using var dir = new TempDirectory();
        string source = Path.Combine(dir.Path, "tiny.png"), output = Path.Combine(dir.Path, "out.png");
        new GeneratedImage(7, 7, new byte[7 * 7 * 3]).SavePng(source);
        var (code, _, error) = await Cli.CliRunner.Run("generate", "--model", TestModels.PathOf("tiny"), "--prompt", "p", "--steps", "2", "--device", "cpu",
            "--init-image", source, "--out", output);
        Assert.Equal(1, code);
        Assert.Contains("--init-image is 7x7 pixels", error);
        Assert.False(File.Exists(output));
    }

    // Issue 20: resizing an init image was silent, although it can change the aspect ratio (a squashed picture).
    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-sd3")]
    public async Task AResizedPictureIsSaidToBeResizedAndAPictureOfTheOutputSizeIsNot(string model)
    {
        using var pipeline = Load(model);
        var wide = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "p", InitImage = Grey(96, 32), Width = 32, Height = 32, Steps = 2, Seed = 1 });
        var warning = Assert.Single(wide.Warnings, w => w.Contains("InitImage", StringComparison.Ordinal));
        Assert.StartsWith("The InitImage (96x32) was resized to 32x32 (its aspect ratio changed from 3 to 1) by Lanczos", warning);
        Assert.Contains("Lanczos", warning);
        var tall = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "p", InitImage = Grey(32, 16), Width = 32, Height = 32, Steps = 2, Seed = 1 });
        Assert.Contains(tall.Warnings, w => w.StartsWith("The InitImage (32x16) was resized to 32x32 (its aspect ratio changed from 2 to 1)", StringComparison.Ordinal));
        var rounded = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "p", InitImage = Grey(33, 33), Steps = 2, Seed = 1 });
        Assert.Contains(rounded.Warnings, w => w.StartsWith("The InitImage (33x33) was resized to 32x32 by Lanczos", StringComparison.Ordinal));
        var same = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "p", InitImage = Grey(32, 32), Steps = 2, Seed = 1 });
        Assert.DoesNotContain(same.Warnings, w => w.Contains("resized", StringComparison.Ordinal));
    }
}
