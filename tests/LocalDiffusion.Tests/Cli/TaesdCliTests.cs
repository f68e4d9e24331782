using LocalDiffusion.Pipeline;
using LocalDiffusion.Cli;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.Cli;

/// <summary>TAESD on the command line: <c>generate --vae TAESD</c>, <c>info</c>'s preview decoder and <c>--preview-vae</c>, <c>bench decode</c>.</summary>
public class TaesdCliTests
{
    private static string Shapes => Path.Combine(TestPaths.ModelsDir, "shapes");
    private static string ShapesTaesd => Path.Combine(Shapes, "taesd");

    [Fact]
    public async Task Generate_with_vae_taesd_draws_the_TAESDs_picture()
    {
        // The same picture the library draws with VaeDecoderPath = the TAESD.
        using var dir = new TempDirectory();
        var png = Path.Combine(dir.Path, "taesd.png");
        var (code, _, error) = await CliRunner.Run("generate", "--model", Shapes, "--prompt", "a red circle on a blue background", "--steps", "8", "--seed", "2",
            "--device", "cpu", "--vae", ShapesTaesd, "--out", png);
        Assert.True(code == 0, error);
        using var pipeline = StableDiffusionPipeline.Load(Shapes, new PipelineOptions { Device = "cpu", VaeDecoderPath = ShapesTaesd });
        var expected = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a red circle on a blue background", Steps = 8, Seed = 2 },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(expected.Images[0].Rgb, GeneratedImage.LoadPng(png).Rgb);
    }

    [Fact]
    public async Task Info_names_the_preview_decoder_and_preview_vae_changes_it()
    {
        var (code, output, error) = await CliRunner.Run("info", "--model", Shapes, "--device", "cpu");
        Assert.True(code == 0, error);
        Assert.Contains("preview decoder", output);
        Assert.Contains("(TAESD)", output);
        (code, output, error) = await CliRunner.Run("info", "--model", Shapes, "--device", "cpu", "--preview-vae", "full");
        Assert.True(code == 0, error);
        Assert.DoesNotContain("(TAESD)", output);
        (code, output, error) = await CliRunner.Run("info", "--model", Shapes, "--device", "cpu", "--vae", ShapesTaesd);
        Assert.True(code == 0, error);
        Assert.Contains("TAESD, float32", output);
    }

    [Fact]
    public async Task A_preview_vae_for_other_latents_is_refused_naming_the_file()
    {
        var taef1 = Path.Combine(TestPaths.ModelsDir, "test", "taesd", "taef1");
        var (code, _, error) = await CliRunner.Run("info", "--model", Shapes, "--device", "cpu", "--preview-vae", taef1);
        Assert.Equal(ExitCodes.ModelError, code);
        Assert.Contains(Path.Combine(taef1, "vae_decoder", "model.onnx"), error.Replace("\n", "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Bench_decode_times_each_decoder()
    {
        var (code, output, error) = await CliRunner.Run("bench", "decode", "--vae", Path.Combine(Shapes, "vae_decoder"), "--vae", ShapesTaesd,
            "--size", "64x64", "--repeats", "1");
        Assert.True(code == 0, error);
        Assert.Contains("64x64, 4 latent channels", output);
        Assert.Contains("TAESD", output);
        Assert.Contains("VAE", output);
        (code, _, error) = await CliRunner.Run("bench", "decode", "--vae", ShapesTaesd, "--size", "60x64");
        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Contains("--size is '60x64'", error);
    }
}
