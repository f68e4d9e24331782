using LocalDiffusion.Pipeline;
using LocalDiffusion.Cli;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.Cli;

/// <summary><c>--vae-tiling on --vae-tile PX</c> on generate (bench pipeline takes the same flags).</summary>
public class VaeTilingCliTests
{
    private static readonly string[] Common =
        ["generate", "--model", TestModels.PathOf("tiny"), "--prompt", "a cat", "--steps", "3", "--seed", "5", "--device", "cpu", "--width", "192", "--height", "128"];

    [Fact]
    public async Task TheFlagsReachTheDecoder()
    {
        using var dir = new TempDirectory();
        var tiled = Path.Combine(dir.Path, "tiled.png");
        var (code, _, error) = await CliRunner.Run([.. Common, "--vae-tiling", "on", "--vae-tile", "64", "--out", tiled]);
        Assert.True(code == 0, error);
        // The library with the same tiling (8-latent tiles) gives these pixels exactly; one VAE call gives others
        // (the random tiny VAE differs by about 17 levels on average in 64-pixel tiles: TiledVaeTests).
        var request = new GenerationRequest { Prompt = "a cat", Steps = 3, Seed = 5, Width = 192, Height = 128 };
        foreach (var (mode, same) in new[] { (VaeTiling.On, true), (VaeTiling.Off, false) })
        {
            using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions
            {
                Device = "cpu", VaeTiling = new VaeTilingOptions { Mode = mode, TileLatentSize = 8 },
            });
            var expected = await pipeline.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken);
            Assert.Equal(same, expected.Images[0].Rgb.AsSpan().SequenceEqual(GeneratedImage.LoadPng(tiled).Rgb));
        }
    }

    [Theory]
    [InlineData("32")]
    [InlineData("100")]
    public async Task ABadTileSizeIsNamed(string tile)
    {
        using var dir = new TempDirectory();
        var (code, _, error) = await CliRunner.Run([.. Common, "--vae-tiling", "on", "--vae-tile", tile, "--out", Path.Combine(dir.Path, "x.png")]);
        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Contains("--vae-tile", error);
    }
}
