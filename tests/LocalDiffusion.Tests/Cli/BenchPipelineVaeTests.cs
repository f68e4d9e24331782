using System.Text.Json;
using LocalDiffusion.Cli;

namespace LocalDiffusion.Tests.Cli;

/// <summary>
/// <c>bench pipeline --vae</c>: timing a model with another decoder (a TAESD for few-step models, as FastSD CPU decodes),
/// as <c>generate --vae</c> takes it; the report's engine options say which decoder and tiling the run used.
/// </summary>
public class BenchPipelineVaeTests
{
    private static string[] Bench(string dir, params string[] extra) =>
        ["bench", "pipeline", "--model", TestModels.PathOf("tiny"), "--steps", "1", "--repeats", "1", "--skip-uncached", "--no-matmul",
         "--device", "cpu", "--cache-dir", dir, .. extra];

    [Fact]
    public async Task TheDecoderAndTilingAreTheReportsOwn()
    {
        using var dir = new TempDirectory();
        var json = Path.Combine(dir.Path, "report.json");
        // The tiny model's own 4-channel TAESD (models/test/README.md, "TAESD test decoders").
        var taesd = Path.Combine(TestModels.PathOf("taesd"), "raw", "taesd_decoder.onnx");
        var (code, output, error) = await CliRunner.Run(Bench(dir.Path, "--vae", taesd, "--vae-tiling", "off", "--json", json));
        Assert.True(code == 0, output + error);
        using var report = JsonDocument.Parse(await File.ReadAllTextAsync(json, TestContext.Current.CancellationToken));
        var tuning = report.RootElement.GetProperty("tuning").GetString();
        Assert.Contains($"vae={taesd}", tuning);
        Assert.Contains("vae_tiling=off", tuning);
    }

    [Fact]
    public async Task AMissingDecoderIsNamedBeforeAnyTiming()
    {
        using var dir = new TempDirectory();
        var missing = Path.Combine(dir.Path, "no-such-taesd.onnx");
        var (code, _, error) = await CliRunner.Run(Bench(dir.Path, "--vae", missing));
        Assert.Equal(ExitCodes.ModelError, code);
        Assert.Contains("no-such-taesd.onnx", error);
    }
}
