using LocalDiffusion.Pipeline;
using LocalDiffusion.Cli;
using LocalDiffusion.Imaging;
using LocalDiffusion.Latents;
using LocalDiffusion.Tests.Upscaling;
using LocalDiffusion.Upscaling;

namespace LocalDiffusion.Tests.Cli;

/// <summary>
/// <c>generate --hires-scale | --hires-size, --hires-upscaler, --hires-steps, --hires-strength</c>: A1111's hires fix from the
/// command line, on the tiny model. The CLI's latents are compared with the library's <see cref="HiresFix.RunAsync"/>
/// (whose steps and sizes follow A1111's sample_hr_pass, and whose resizes are checked against torch and PIL).
/// </summary>
public class HiresCliTests
{
    private const string Prompt = "a red circle on a blue background";

    private static readonly string[] Common =
        ["generate", "--model", TestModels.PathOf("tiny"), "--prompt", Prompt, "--steps", "6", "--seed", "7", "--width", "64", "--height", "64", "--scheduler", "euler", "--device", "cpu"];

    private static GenerationRequest Request => new() { Prompt = Prompt, Steps = 6, Seed = 7, Width = 64, Height = 64, Scheduler = "euler" };

    [Fact]
    public async Task Hires_scale_matches_the_library()
    {
        using var dir = new TempDirectory();
        string png = Path.Combine(dir.Path, "hires.png"), npy = Path.Combine(dir.Path, "hires.npy");
        var (code, output, error) = await CliRunner.Run([.. Common, "--hires-scale", "2", "--hires-strength", "0.5", "--out", png, "--save-latents", npy]);
        Assert.True(code == 0, error + output);
        Assert.Contains("(128x128)", output);
        var parameters = PngTextChunks.Read(File.ReadAllBytes(png))["parameters"];
        Assert.Contains("Size: 64x64", parameters); // A1111 writes the first pass's size
        Assert.Contains("Hires upscale: 2", parameters);
        Assert.Contains("Denoising strength: 0.5", parameters);
        var expected = await HiresFix.RunAsync(TestModels.Pipeline("tiny"), Request, new HiresOptions { Scale = 2, Strength = 0.5f },
            cancellationToken: TestContext.Current.CancellationToken);
        var (latents, shape) = NpyFile.Read(npy);
        Assert.Equal([1, 4, 16, 16], shape);
        Assert.Equal(expected.FinalLatents, latents);
        // Euler: 6 first-pass steps and 6 hires steps (A1111 runs exactly the hires steps, over a schedule stretched to 6 / 0.5).
        Assert.True(output.Contains("12 UNet evaluations", StringComparison.Ordinal), output);
    }

    [Fact]
    public async Task Hires_size_steps_and_an_esrgan_upscaler()
    {
        using var dir = new TempDirectory();
        var png = Path.Combine(dir.Path, "hires.png");
        var model = ImageUpscalerTests.Model("tiny-esrgan-x2");
        var (code, output, error) = await CliRunner.Run([.. Common, "--hires-size", "96x0", "--hires-upscaler", model, "--hires-steps", "3", "--out", png]);
        Assert.True(code == 0, error + output);
        Assert.Contains("(96x96)", output); // 0 keeps the aspect ratio
        var parameters = PngTextChunks.Read(File.ReadAllBytes(png))["parameters"];
        Assert.Contains("Hires resize: 96x0", parameters);
        Assert.Contains("Hires upscaler: tiny-esrgan-x2", parameters);
        Assert.Contains("Hires steps: 3", parameters);
        Assert.Contains("Denoising strength: 0.7", parameters); // A1111's default
        Assert.True(output.Contains("9 UNet evaluations", StringComparison.Ordinal), output); // 6 + 3

        using var upscaler = ImageUpscaler.Load(model);
        var expected = await HiresFix.RunAsync(TestModels.Pipeline("tiny"), Request,
            new HiresOptions { ResizeWidth = 96, Upscaler = "tiny-esrgan-x2", Model = upscaler, SecondPassSteps = 3 },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(expected.Images[0].Rgb, RgbaPicture.Load(png).Rgb);
    }

    [Theory]
    [InlineData(new[] { "--hires-steps", "3" }, "--hires-steps needs --hires-scale")]
    [InlineData(new[] { "--hires-scale", "0.5" }, "--hires-scale")]
    [InlineData(new[] { "--hires-scale", "2", "--hires-strength", "0" }, "--hires-strength")]
    [InlineData(new[] { "--hires-size", "big" }, "--hires-size 'big' is not WxH")]
    [InlineData(new[] { "--hires-size", "32x32" }, "--hires-size")]
    [InlineData(new[] { "--hires-scale", "2", "--hires-size", "128x128" }, "use one")]
    [InlineData(new[] { "--hires-scale", "2", "--hires-upscaler", "R-ESRGAN 4x+" }, "--hires-upscaler 'R-ESRGAN 4x+'")]
    [InlineData(new[] { "--hires-scale", "2", "--hires-steps", "2000" }, "--hires-steps")]
    public async Task Bad_hires_flags_are_refused_naming_them(string[] flags, string expected)
    {
        using var dir = new TempDirectory();
        var output = Path.Combine(dir.Path, "x.png");
        var (code, _, error) = await CliRunner.Run([.. Common, .. flags, "--out", output]);
        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Contains(expected, error);
        Assert.False(File.Exists(output));
    }
}
