using System.Text.Json;
using LocalDiffusion.ControlNet;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.ControlNet;

/// <summary>
/// The canny preprocessor against tools/canny_reference.py (TestData/ControlNet/canny_reference.json): the same algorithm
/// written independently in numpy (vectorised slicing and iterative dilation), on a picture of flat shapes and a seeded
/// noisy gradient at A1111's 100/200, lower thresholds, and with a Gaussian blur; plus a case worked out by hand.
/// </summary>
public class CannyEdgesTests
{
    private static readonly Lazy<JsonElement[]> Cases = new(() =>
        [.. JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("ControlNet", "canny_reference.json"))).RootElement.GetProperty("cases").EnumerateArray()]);

    public static TheoryData<string> Names => [.. Cases.Value.Select(c => c.GetProperty("name").GetString()!)];

    [Theory]
    [MemberData(nameof(Names))]
    public void EdgesMatchTheNumpyReference(string name)
    {
        var c = Cases.Value.Single(e => e.GetProperty("name").GetString() == name);
        int w = c.GetProperty("width").GetInt32(), h = c.GetProperty("height").GetInt32();
        var image = new InitImage(w, h, Convert.FromBase64String(c.GetProperty("rgb").GetString()!));
        var edges = CannyEdges.Detect(image, c.GetProperty("low").GetSingle(), c.GetProperty("high").GetSingle(), c.GetProperty("sigma").GetSingle());
        var expected = c.GetProperty("edges").EnumerateArray().Select(e => e.GetInt32()).ToHashSet();
        var actual = Enumerable.Range(0, w * h).Where(p => edges.Rgb[3 * p] == 255).ToHashSet();
        Assert.All(Enumerable.Range(0, w * h), p => Assert.Equal(edges.Rgb[3 * p], edges.Rgb[3 * p + 2])); // grey: all channels alike
        // Exact: without blur the gradients are integers and the sector tests use the same float32 products as numpy.
        // With blur (float32 sums in another order) a tie could flip in principle; none does on this picture.
        Assert.True(expected.SetEquals(actual),
            $"{name}: {expected.Except(actual).Count()} reference edge pixels missing, {actual.Except(expected).Count()} extra (of {expected.Count}).");
    }

    [Fact]
    public void AWhiteSquareOnBlackHasItsBorderAsEdges()
    {
        // A square covering x, y in [16, 31] of 48×48. Along row 24 the horizontal gradient is 4·255 = 1020 on both sides of
        // each step (x = 15, 16 and x = 31, 32) and 0 elsewhere; the plateau rule (strictly above the left, at least the
        // right) keeps x = 15 and x = 31. Row 8, far from the square, has no edge.
        var rgb = new byte[48 * 48 * 3];
        for (var y = 16; y < 32; y++)
            for (var x = 16; x < 32; x++)
                rgb.AsSpan((y * 48 + x) * 3, 3).Fill(255);
        var edges = CannyEdges.Detect(new InitImage(48, 48, rgb));
        int[] row24 = [.. Enumerable.Range(0, 48).Where(x => edges.Rgb[(24 * 48 + x) * 3] == 255)];
        Assert.Equal([15, 31], row24);
        int[] column24 = [.. Enumerable.Range(0, 48).Where(y => edges.Rgb[(y * 48 + 24) * 3] == 255)];
        Assert.Equal([15, 31], column24);
        Assert.DoesNotContain(Enumerable.Range(0, 48), x => edges.Rgb[(8 * 48 + x) * 3] == 255);
        // A flat picture has no edges at all.
        Assert.All(CannyEdges.Detect(new InitImage(16, 16, new byte[16 * 16 * 3])).Rgb, v => Assert.Equal(0, v));
    }

    [Theory]
    [InlineData(-1f, 200f, 0f, "lowThreshold")]
    [InlineData(200f, 100f, 0f, "highThreshold")]
    [InlineData(100f, float.NaN, 0f, "highThreshold")]
    [InlineData(100f, 200f, 11f, "blurSigma")]
    public void BadThresholdsAreRefused(float low, float high, float sigma, string parameter)
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => CannyEdges.Detect(new InitImage(8, 8, new byte[8 * 8 * 3]), low, high, sigma));
        Assert.Equal(parameter, e.ParamName);
    }

    [Fact]
    public async Task ThePipelinesPreprocessorsAreCannyThenResize()
    {
        // "canny" gives what the edge picture given with "none" gives, and "none" resizes a smaller image to the output
        // size as InitImage.Resize does: the same control, so the same latents, exactly.
        var pipeline = TestModels.Pipeline("tiny-controlnet");
        var net = Path.Combine(TestModels.PathOf("tiny-controlnet"), "controlnet");
        var picture = ControlNetParityTests.Picture("B", 96, 64);
        GenerationRequest With(ControlNetUnit unit) => new()
        {
            Prompt = "a red circle", Seed = 3, Steps = 4, Width = 96, Height = 64, Scheduler = "euler", ControlNets = [unit],
        };
        var token = TestContext.Current.CancellationToken;
        var canny = await pipeline.GenerateAsync(With(new() { ModelPath = net, Image = picture, Preprocessor = ControlPreprocessor.Canny }), cancellationToken: token);
        var given = await pipeline.GenerateAsync(With(new() { ModelPath = net, Image = CannyEdges.Detect(picture) }), cancellationToken: token);
        Assert.Equal(given.FinalLatents, canny.FinalLatents);
        var small = ControlNetParityTests.Picture("A", 48, 32);
        var resized = await pipeline.GenerateAsync(With(new() { ModelPath = net, Image = small }), cancellationToken: token);
        var byHand = await pipeline.GenerateAsync(With(new() { ModelPath = net, Image = small.Resize(96, 64) }), cancellationToken: token);
        Assert.Equal(byHand.FinalLatents, resized.FinalLatents);
        Assert.NotEqual(given.FinalLatents, byHand.FinalLatents);
    }
}
