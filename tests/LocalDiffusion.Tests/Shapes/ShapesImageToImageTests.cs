using LocalDiffusion.Pipeline;
using LocalDiffusion.Evaluation;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.Shapes;

/// <summary>
/// img2img and inpainting on the shipped shapes model, judged by what the pictures show (<see cref="ShapesAnalyser"/>
/// and pixel colours), over 20 seeds at the model's defaults (20 steps, guidance 7.5, its DPM++ 2M).
/// </summary>
public class ShapesImageToImageTests
{
    private const int Seeds = 20;
    private static readonly string Folder = Path.Combine(TestPaths.ModelsDir, "shapes");

    [Fact]
    public async Task Img2ImgRecoloursTheCircleAndKeepsTheBackground()
    {
        using var pipeline = StableDiffusionPipeline.Load(Folder, new PipelineOptions { Device = "cpu" });
        var token = TestContext.Current.CancellationToken;
        var source = (await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a red circle on a blue background", Seed = 1 }, cancellationToken: token)).Images[0];
        var before = ShapesAnalyser.Analyse(source.Rgb, source.Width, source.Height);
        Assert.Equal(("red", "blue"), (before.Color, before.Background));

        int changed = 0, kept = 0, both = 0;
        for (var seed = 1; seed <= Seeds; seed++)
        {
            var image = (await pipeline.GenerateAsync(new GenerationRequest
            {
                Prompt = "a green circle on a blue background",
                Seed = seed,
                InitImage = InitImage.FromImage(source),
                Strength = 0.7f,
            }, cancellationToken: token)).Images[0];
            var seen = ShapesAnalyser.Analyse(image.Rgb, image.Width, image.Height);
            changed += seen.Color == "green" ? 1 : 0;
            kept += seen.Background == "blue" ? 1 : 0;
            both += seen.Color == "green" && seen.Background == "blue" ? 1 : 0;
        }
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"img2img red→green circle, strength 0.7, {Seeds} seeds: green {changed}, blue background {kept}, both {both} ({100.0 * both / Seeds:0} %)");
        Assert.True(both >= 0.8 * Seeds, $"only {both} of {Seeds} seeds turned the circle green on a blue background");
    }

    [Fact]
    public async Task InpaintingTheLeftHalfKeepsTheRightHalfAndDrawsAYellowObject()
    {
        using var pipeline = StableDiffusionPipeline.Load(Folder, new PipelineOptions { Device = "cpu" });
        var token = TestContext.Current.CancellationToken;
        var source = (await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a red circle on the right on a blue background", Seed = 2 }, cancellationToken: token)).Images[0];
        int width = source.Width, height = source.Height;
        var init = InitImage.FromImage(source);

        // The VAE round-trip error, measured with the engine: img2img at strength 0.05 runs one step of 20 from
        // the encoded picture at a low noise level, so its output is decode(encode(x)) up to that one small step.
        var roundTrip = (await pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = "", Seed = 1, InitImage = init, Strength = 0.05f, GuidanceScale = 1f,
        }, cancellationToken: token)).Images[0];
        var half = width / 2;
        var roundTripError = MeanAbsolute(source.Rgb, roundTrip.Rgb, width, height, half);

        var left = Mask(width, height, x => x < half);
        int yellow = 0, keptRight = 0;
        double worstRight = 0;
        for (var seed = 1; seed <= Seeds; seed++)
        {
            var image = (await pipeline.GenerateAsync(new GenerationRequest
            {
                Prompt = "a yellow star on the left on a blue background",
                Seed = seed,
                InitImage = init,
                MaskImage = left,
                Strength = 1f,
            }, cancellationToken: token)).Images[0];
            // The kept half is pasted back from the input (as AUTOMATIC1111 does): without the paste-back the decoder,
            // which sees the whole latent picture, moved the kept columns 40–63 by up to 9.8 levels (mean |error|) from
            // the VAE round trip's 3.2 over 20 seeds, measured before the paste-back was added.
            var right = MeanAbsolute(source.Rgb, image.Rgb, width, height, half);
            worstRight = Math.Max(worstRight, right);
            keptRight += right <= roundTripError ? 1 : 0;
            yellow += YellowPixelsOnTheLeft(image.Rgb, width, height) >= 20 ? 1 : 0;
        }
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"inpaint left half, {Seeds} seeds: right half within the VAE round-trip error ({roundTripError:0.00} levels mean |error|) " +
            $"in {keptRight}/{Seeds} (worst {worstRight:0.00}); yellow object on the left {yellow}/{Seeds} ({100.0 * yellow / Seeds:0} %)");
        Assert.Equal(Seeds, keptRight);
        Assert.True(yellow >= 0.7 * Seeds, $"only {yellow} of {Seeds} seeds drew a yellow object on the left");
    }

    private static InitImage Mask(int width, int height, Func<int, bool> repaint)
    {
        var rgb = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
                if (repaint(x))
                    rgb.AsSpan((y * width + x) * 3, 3).Fill(255);
        return new InitImage(width, height, rgb);
    }

    private static double MeanAbsolute(byte[] a, byte[] b, int width, int height, int fromColumn)
    {
        double sum = 0;
        var count = 0;
        for (var y = 0; y < height; y++)
            for (var x = fromColumn; x < width; x++)
                for (var c = 0; c < 3; c++, count++)
                    sum += Math.Abs(a[(y * width + x) * 3 + c] - b[(y * width + x) * 3 + c]);
        return sum / count;
    }

    private static int YellowPixelsOnTheLeft(byte[] rgb, int width, int height)
    {
        var count = 0;
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width / 2; x++)
            {
                int r = rgb[(y * width + x) * 3], g = rgb[(y * width + x) * 3 + 1], b = rgb[(y * width + x) * 3 + 2];
                count += r > 160 && g > 160 && b < 110 ? 1 : 0;
            }
        return count;
    }
}
