using LocalDiffusion.Imaging;
using LocalDiffusion.Latents;
using LocalDiffusion.Tests.Pipeline;
using LocalDiffusion.Tests.Schedulers;

namespace LocalDiffusion.Tests.Cli;

/// <summary><c>generate --original-size --crop --target-size --negative-… --aesthetic-score</c> on tiny-sdxl.</summary>
public class SdxlOptionsCliTests
{
    private static readonly string[] Common =
        ["generate", "--model", TestModels.PathOf("tiny-sdxl"), "--prompt", "a red circle on a blue background", "--device", "cpu"];

    [Fact]
    public async Task TheFlagsReachTheUNetAsDiffusersTimeIds()
    {
        // tools/pipeline_reference/sdxl_tiny.py's micro-conditioning case ((height, width) there, WxH here), through
        // the command line; final latents within the parity tests' tolerance (1e-4 of their scale).
        var c = new PipelineReferenceCases("diffusers_sdxl_tiny.json").Case("sdxl/micro_conditioning_4_steps_g5");
        using var dir = new TempDirectory();
        string png = Path.Combine(dir.Path, "out.png"), npy = Path.Combine(dir.Path, "out.npy");
        var (code, _, error) = await CliRunner.Run([.. Common, "--steps", "4", "--guidance", "5", "--seed", "11", "--width", "96", "--height", "64",
            "--original-size", "192x128", "--crop", "16,8", "--target-size", "80x48",
            "--negative-original-size", "256x256", "--negative-crop", "4,0", "--negative-target-size", "96x64", "--out", png, "--save-latents", npy]);
        Assert.True(code == 0, error);
        var expected = DiffusersReference.Floats(c.GetProperty("final_latents"));
        Tolerance.AssertClose(expected, NpyFile.Read(npy).Data, "cli", relative: 0, absolute: 1e-4 * expected.Max(MathF.Abs));
        Assert.Contains("Original size: 192x128, Crop: 16,8, Target size: 80x48", PngTextChunks.Read(File.ReadAllBytes(png))["parameters"]);
    }

    [Theory]
    [InlineData("--crop", "16;8", "TOP,LEFT")]
    [InlineData("--original-size", "1024", "WIDTHxHEIGHT")]
    [InlineData("--target-size", "0x64", "--target-size is 0x64")]
    [InlineData("--aesthetic-score", "7", "refiner")]
    public async Task BadValuesAreRefusedNamingTheFlag(string flag, string value, string message)
    {
        using var dir = new TempDirectory();
        var (code, _, error) = await CliRunner.Run([.. Common, "--steps", "1", flag, value, "--out", Path.Combine(dir.Path, "x.png")]);
        Assert.Equal(1, code);
        Assert.Contains(flag, error);
        Assert.Contains(message, error);
    }
}
