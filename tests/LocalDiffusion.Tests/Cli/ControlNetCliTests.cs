using LocalDiffusion.ControlNet;
using LocalDiffusion.Imaging;
using LocalDiffusion.Tests.ControlNet;

namespace LocalDiffusion.Tests.Cli;

/// <summary><c>generate --controlnet DIR[:SCALE] --control-image --control-preprocessor --control-start --control-end --guess-mode</c>.</summary>
public class ControlNetCliTests
{
    private static string Model => TestModels.PathOf("tiny-controlnet");

    private static string[] Common(string model) =>
        ["generate", "--model", model, "--prompt", "a red circle", "--steps", "4", "--seed", "3", "--device", "cpu", "--width", "96", "--height", "64", "--scheduler", "euler"];

    [Fact]
    public async Task TwoControlNetsFromTheCommandLineDrawWhatTheLibraryDraws()
    {
        using var dir = new TempDirectory();
        string a = Path.Combine(dir.Path, "a.png"), b = Path.Combine(dir.Path, "b.png"), output = Path.Combine(dir.Path, "out.png");
        var pictureA = ControlNetParityTests.Picture("A", 96, 64);
        var pictureB = ControlNetParityTests.Picture("B", 96, 64);
        new GeneratedImage(96, 64, pictureA.Rgb).SavePng(a);
        new GeneratedImage(96, 64, pictureB.Rgb).SavePng(b);
        var (code, _, error) = await CliRunner.Run([.. Common(Model),
            "--controlnet", Path.Combine(Model, "controlnet") + ":0.8", "--controlnet", Path.Combine(Model, "controlnet_1"),
            "--control-image", a, "--control-image", b, "--control-preprocessor", "none", "--control-preprocessor", "canny",
            "--control-start", "0.25", "--control-end", "0.75", "--control-end", "1", "--guess-mode", "--out", output]);
        Assert.True(code == 0, error);
        var expected = await TestModels.Pipeline("tiny-controlnet").GenerateAsync(new GenerationRequest
        {
            Prompt = "a red circle", Steps = 4, Seed = 3, Width = 96, Height = 64, Scheduler = "euler", ControlNetGuessMode = true,
            ControlNets =
            [
                new() { ModelPath = Path.Combine(Model, "controlnet"), Scale = 0.8f, Image = pictureA, GuidanceStart = 0.25f, GuidanceEnd = 0.75f },
                new() { ModelPath = Path.Combine(Model, "controlnet_1"), Image = pictureB, Preprocessor = ControlPreprocessor.Canny, GuidanceStart = 0.25f },
            ],
        }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(expected.Images[0].Rgb, GeneratedImage.LoadPng(output).Rgb);
        // The PNG says which ControlNets drew it, as the A1111 extension's infotext does.
        var parameters = PngTextChunks.Read(File.ReadAllBytes(output))["parameters"];
        Assert.Contains("ControlNet 0: \"Module: none, Model: controlnet, Weight: 0.8, Resize Mode: Just Resize, Guidance Start: 0.25, Guidance End: 0.75, Control Mode: ControlNet is more important\"", parameters);
        Assert.Contains("ControlNet 1: \"Module: canny, Model: controlnet_1, Weight: 1, Resize Mode: Just Resize, Threshold A: 100, Threshold B: 200, Guidance Start: 0.25, Guidance End: 1,", parameters);
        var plain = Path.Combine(dir.Path, "plain.png");
        Assert.Equal(0, (await CliRunner.Run([.. Common(Model), "--out", plain])).Code);
        Assert.NotEqual(GeneratedImage.LoadPng(plain).Rgb, GeneratedImage.LoadPng(output).Rgb);
    }

    public static TheoryData<string, string[], string> BadArguments => new()
    {
        { "no image", ["--controlnet", "{net}"], "--controlnet needs --control-image" },
        { "no controlnet", ["--control-image", "{image}"], "--control-image needs --controlnet" },
        { "guess mode alone", ["--guess-mode"], "--guess-mode needs --controlnet" },
        { "missing folder", ["--controlnet", "/no/such/controlnet:0.5", "--control-image", "{image}"], "--controlnet /no/such/controlnet: no such folder" },
        { "missing image", ["--controlnet", "{net}", "--control-image", "/no/such/control.png"], "/no/such/control.png" },
        { "unpaired", ["--controlnet", "{net}", "--control-image", "{image}", "--control-end", "0.5", "--control-end", "0.7"], "--control-end is given 2 times for 1 --controlnet" },
        { "preprocessor", ["--controlnet", "{net}", "--control-image", "{image}", "--control-preprocessor", "depth"], "expected none or canny" },
        { "window", ["--controlnet", "{net}", "--control-image", "{image}", "--control-start", "0.9", "--control-end", "0.2"], "GuidanceStart 0.9 and GuidanceEnd 0.2" },
    };

    [Theory]
    [MemberData(nameof(BadArguments))]
    public async Task BadArgumentsAreRefusedNamingTheFlag(string what, string[] arguments, string message)
    {
        using var dir = new TempDirectory();
        var image = Path.Combine(dir.Path, "control.png");
        new GeneratedImage(96, 64, ControlNetParityTests.Picture("A", 96, 64).Rgb).SavePng(image);
        var net = Path.Combine(Model, "controlnet");
        var (code, _, error) = await CliRunner.Run([.. Common(Model), .. arguments.Select(a => a.Replace("{net}", net).Replace("{image}", image)),
            "--out", Path.Combine(dir.Path, "x.png")]);
        Assert.True(code == 1, $"{what}: exit code {code}, {error}");
        Assert.Contains(message, error);
    }

    [Fact]
    public async Task InfoSaysWhetherControlNetsCanSteerTheUNet()
    {
        var (code, output, error) = await CliRunner.Run("info", "--model", Model, "--device", "cpu");
        Assert.True(code == 0, error);
        Assert.Contains("4 down-block + 1 mid-block residual inputs", output);
        (code, output, error) = await CliRunner.Run("info", "--model", TestModels.PathOf("tiny"), "--device", "cpu");
        Assert.True(code == 0, error);
        Assert.Contains("no residual inputs", output);
    }

    [Fact]
    public async Task AModelWithoutResidualInputsIsRefusedNamingItsUNet()
    {
        using var dir = new TempDirectory();
        var image = Path.Combine(dir.Path, "control.png");
        new GeneratedImage(96, 64, ControlNetParityTests.Picture("A", 96, 64).Rgb).SavePng(image);
        var tiny = TestModels.PathOf("tiny");
        var (code, _, error) = await CliRunner.Run([.. Common(tiny), "--controlnet", Path.Combine(Model, "controlnet"), "--control-image", image,
            "--out", Path.Combine(dir.Path, "x.png")]);
        Assert.Equal(1, code);
        Assert.Contains("takes no ControlNet residuals", error);
        Assert.Contains(Path.Combine("tiny", "unet", "model.onnx"), error);
    }
}
