using LocalDiffusion.Cli;
using LocalDiffusion.Imaging;
using LocalDiffusion.Latents;

namespace LocalDiffusion.Tests.Cli;

/// <summary><c>generate --refiner DIR --refiner-switch F</c>: the SDXL base → refiner hand-off from the command line.</summary>
public class RefinerCliTests
{
    private static readonly string[] Common =
        ["generate", "--model", TestModels.PathOf("tiny-sdxl"), "--prompt", "a red circle on a blue background", "--steps", "10",
         "--guidance", "5", "--seed", "42", "--width", "96", "--height", "64", "--device", "cpu"];

    [Fact]
    public async Task TheRefinerFinishesWhatTheBaseStarts()
    {
        using var dir = new TempDirectory();
        string png = Path.Combine(dir.Path, "refined.png"), npy = Path.Combine(dir.Path, "refined.npy");
        var (code, output, error) = await CliRunner.Run([.. Common, "--refiner", TestModels.PathOf("tiny-sdxl-refiner"), "--refiner-switch", "0.8",
            "--out", png, "--save-latents", npy]);
        Assert.True(code == 0, error + output);
        Assert.Contains("10 UNet evaluations", output); // 8 base + 2 refiner steps
        Assert.Contains("Refiner switch at: 0.8", PngTextChunks.Read(File.ReadAllBytes(png))["parameters"]);
        // The library's hand-off, whose latents match diffusers (RefinerHandOffTests), gives the same latents.
        var expected = await TestModels.Pipeline("tiny-sdxl").GenerateWithRefinerAsync(new GenerationRequest
        {
            Prompt = "a red circle on a blue background", Steps = 10, GuidanceScale = 5, Seed = 42, Width = 96, Height = 64,
        }, TestModels.Pipeline("tiny-sdxl-refiner"), 0.8f, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(expected.FinalLatents, NpyFile.Read(npy).Data);
    }

    [Theory]
    [InlineData("--refiner-switch", "1.2", "--refiner-switch")]
    [InlineData("--refiner", "/no/such/refiner", "/no/such/refiner")]
    public async Task BadRefinerOptionsAreNamed(string flag, string value, string named)
    {
        using var dir = new TempDirectory();
        string[] refiner = flag == "--refiner" ? [] : ["--refiner", TestModels.PathOf("tiny-sdxl-refiner")];
        var (code, _, error) = await CliRunner.Run([.. Common, .. refiner, flag, value, "--out", Path.Combine(dir.Path, "x.png")]);
        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Contains(named, error);
    }

    [Fact]
    public async Task ASwitchWithoutARefinerIsRefused()
    {
        using var dir = new TempDirectory();
        var (code, _, error) = await CliRunner.Run([.. Common, "--refiner-switch", "0.7", "--out", Path.Combine(dir.Path, "x.png")]);
        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Contains("--refiner-switch needs --refiner", error);
    }

    [Fact]
    public async Task ARefinerFromAnotherLatentSpaceIsRefusedNamingTheFlag()
    {
        using var dir = new TempDirectory();
        var (code, _, error) = await CliRunner.Run([.. Common, "--refiner", TestModels.PathOf("tiny"), "--out", Path.Combine(dir.Path, "x.png")]);
        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Contains("latent spaces differ", error);
        Assert.False(File.Exists(Path.Combine(dir.Path, "x.png")));
    }
}
