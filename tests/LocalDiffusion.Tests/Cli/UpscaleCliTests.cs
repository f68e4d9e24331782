using LocalDiffusion.Imaging;
using LocalDiffusion.Cli;
using LocalDiffusion.Latents;
using LocalDiffusion.Tests.Upscaling;
using LocalDiffusion.Upscaling;

namespace LocalDiffusion.Tests.Cli;

/// <summary><c>localdiffusion upscale --model --in --out [--scale] [--tile]</c> with the tiny ESRGANs of models/test/esrgan.</summary>
public class UpscaleCliTests
{
    private static string Input => TestPaths.TestData("Upscaling", "input.png");

    // The torch net's output (esrgan_x4_reference.npy, from tools/build_esrgan_test_models.py) as 8-bit pixels: the engine's
    // float output is within 5e-7 of it, so a pixel may round the other way only at an exact .5 — tolerance 1 level.
    [Fact]
    public async Task Upscale_writes_the_models_picture()
    {
        using var dir = new TempDirectory();
        var output = Path.Combine(dir.Path, "big.png");
        var (code, stdout, error) = await CliRunner.Run("upscale", "--model", ImageUpscalerTests.Model("tiny-esrgan-x4"), "--in", Input, "--out", output);
        Assert.True(code == 0, error + stdout);
        Assert.Contains("(80x56)", stdout);
        var picture = RgbaPicture.Load(output);
        Assert.Equal((80, 56), (picture.Width, picture.Height));
        var (reference, _) = NpyFile.Read(TestPaths.TestData("Upscaling", "esrgan_x4_reference.npy"));
        var plane = 80 * 56;
        for (var p = 0; p < plane; p++)
            for (var c = 0; c < 3; c++)
                Assert.InRange(picture.Rgb[p * 3 + c], Math.Clamp(reference[c * plane + p], 0, 1) * 255 - 1, Math.Clamp(reference[c * plane + p], 0, 1) * 255 + 1);
    }

    [Fact]
    public async Task Scale_tile_and_alpha()
    {
        using var dir = new TempDirectory();
        // A 100x80 picture with alpha (the test picture enlarged, its left third transparent).
        var source = RgbaPicture.Load(Input).ResizeLanczos(100, 80);
        var alpha = Enumerable.Range(0, 100 * 80).Select(i => (byte)(i % 100 < 33 ? 0 : 255)).ToArray();
        var input = Path.Combine(dir.Path, "in.png");
        new RgbaPicture(100, 80, source.Rgb, alpha).SavePng(input);
        string whole = Path.Combine(dir.Path, "whole.png"), tiled = Path.Combine(dir.Path, "tiled.png"), three = Path.Combine(dir.Path, "three.png");
        var model = ImageUpscalerTests.Model("tiny-esrgan-x2-fp16");
        Assert.Equal(0, (await CliRunner.Run("upscale", "--model", model, "--in", input, "--out", whole, "--tile", "0")).Code);
        Assert.Equal(0, (await CliRunner.Run("upscale", "--model", model, "--in", input, "--out", tiled, "--tile", "64", "--tile-overlap", "32")).Code);
        var (a, b) = (RgbaPicture.Load(whole), RgbaPicture.Load(tiled));
        Assert.Equal((200, 160), (a.Width, a.Height));
        // Six tiles of 64 sharing 32 pixels: the float outputs agree within 1e-4 (ImageUpscalerTests), so 8-bit pixels within 1 level.
        Assert.All(a.Rgb.Zip(b.Rgb), p => Assert.InRange(p.First - p.Second, -1, 1));
        Assert.Equal(LanczosResampler.Resize(alpha, 100, 80, 1, 200, 160), a.Alpha);

        // --scale 3 with a ×2 model: two passes (×4), then Lanczos down to 300×240.
        var (code, stdout, error) = await CliRunner.Run("upscale", "--model", model, "--in", input, "--out", three, "--scale", "3");
        Assert.True(code == 0, error + stdout);
        var c = RgbaPicture.Load(three);
        Assert.Equal((300, 240), (c.Width, c.Height));
        Assert.NotNull(c.Alpha);
    }

    [Theory]
    [InlineData("--in", "/no/such/picture.png", "--in")]
    [InlineData("--out", "x.jpg", "--out")]
    [InlineData("--tile", "8", "--tile")]
    [InlineData("--tile-overlap", "200", "--tile-overlap")]
    [InlineData("--scale", "0.5", "--scale")]
    public async Task Bad_flags_are_refused_naming_them(string flag, string value, string named)
    {
        using var dir = new TempDirectory();
        string[] args = ["upscale", "--model", ImageUpscalerTests.Model("tiny-esrgan-x2"), "--in", Input, "--out", Path.Combine(dir.Path, "o.png")];
        var at = Array.IndexOf(args, flag);
        args = at >= 0 ? [.. args[..(at + 1)], value, .. args[(at + 2)..]] : [.. args, flag, value];
        if (flag == "--out") args[^1] = Path.Combine(dir.Path, value);
        var (code, _, error) = await CliRunner.Run(args);
        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Contains(named, error);
    }

    [Fact]
    public async Task A_model_that_is_not_an_upscaler_is_a_model_error_naming_the_file()
    {
        using var dir = new TempDirectory();
        var vae = Path.Combine(TestPaths.ModelsDir, "test", "tiny", "vae_decoder", "model.onnx");
        var (code, _, error) = await CliRunner.Run("upscale", "--model", vae, "--in", Input, "--out", Path.Combine(dir.Path, "o.png"));
        Assert.Equal(2, code);
        Assert.Contains(vae, error);
        Assert.False(File.Exists(Path.Combine(dir.Path, "o.png")));
    }

    [Fact]
    public async Task An_existing_output_is_kept_without_overwrite()
    {
        using var dir = new TempDirectory();
        var output = Path.Combine(dir.Path, "o.png");
        File.WriteAllText(output, "mine");
        var (code, _, error) = await CliRunner.Run("upscale", "--model", ImageUpscalerTests.Model("tiny-esrgan-x2"), "--in", Input, "--out", output);
        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Contains("--overwrite", error);
        Assert.Equal("mine", File.ReadAllText(output));
    }
}
