using System.Text.Json;
using LocalDiffusion.Cli;
using LocalDiffusion.Imaging;
using LocalDiffusion.Latents;
using Spectre.Console;

namespace LocalDiffusion.Tests.Cli;

/// <summary>The <c>localdiffusion</c> commands, run in-process on the test models.</summary>
public class CliTests
{
    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public async Task GenerateWritesAPngWithItsParameters()
    {
        using var dir = new TempDirectory();
        var png = Path.Combine(dir.Path, "cat.png");
        var (code, output, error) = await Run("generate", "--model", TestModels.PathOf("tiny"), "--prompt", "a cat",
            "--steps", "3", "--width", "64", "--height", "64", "--seed", "5", "--scheduler", "ddim", "--device", "cpu", "--out", png);

        Assert.True(code == 0, error);
        Assert.Contains("seed 5", output);
        var texts = PngTextChunks.Read(File.ReadAllBytes(png));
        Assert.StartsWith("a cat\nSteps: 3, Sampler: DDIM, CFG scale: 7.5, Seed: 5, Size: 64x64", texts["parameters"]);
        Assert.Equal(64, GeneratedImage.LoadPng(png).Width);
    }

    [Fact]
    public async Task GenerateRefusesToOverwriteAnExistingFile()
    {
        using var dir = new TempDirectory();
        var png = Path.Combine(dir.Path, "mine.png");
        File.WriteAllText(png, "precious");

        var (code, _, error) = await Run("generate", "--model", TestModels.PathOf("tiny"), "--prompt", "a cat", "--out", png);

        Assert.Equal(1, code);
        Assert.Contains("already exists", error);
        Assert.Equal("precious", File.ReadAllText(png));
    }

    [Fact]
    public async Task AUnetBatchLimitBelowOneIsNamed()
    {
        using var dir = new TempDirectory();
        var png = Path.Combine(dir.Path, "x.png");
        var (code, _, error) = await Run("generate", "--model", TestModels.PathOf("tiny"), "--prompt", "a cat", "--out", png, "--max-unet-batch", "0");
        Assert.Equal(1, code);
        Assert.Contains("--max-unet-batch is 0; it must be at least 1", error);
        Assert.False(File.Exists(png));
    }

    [Fact]
    public async Task SavedLatentsFedBackGiveTheSameImage()
    {
        using var dir = new TempDirectory();
        string first = Path.Combine(dir.Path, "a.png"), second = Path.Combine(dir.Path, "b.png");
        string noise = Path.Combine(dir.Path, "noise.npy"), final = Path.Combine(dir.Path, "final.npy");
        string[] common = ["generate", "--model", TestModels.PathOf("tiny"), "--prompt", "a cat", "--steps", "3", "--width", "64", "--height", "64", "--scheduler", "ddim"];

        // The seed's unit noise, written as numpy would, then used instead of a seed.
        NpyFile.Write(noise, new LocalDiffusion.Randomness.TorchGenerator(11).Normal(4 * 8 * 8), [1, 4, 8, 8]);
        Assert.Equal(0, (await Run([.. common, "--seed", "11", "--out", first, "--save-latents", final])).Code);
        Assert.Equal(0, (await Run([.. common, "--latents", noise, "--out", second])).Code);

        Assert.Equal(GeneratedImage.LoadPng(first).Rgb, GeneratedImage.LoadPng(second).Rgb);
        Assert.Equal([1, 4, 8, 8], NpyFile.Read(final).Shape);
    }

    [Fact]
    public async Task MissingPromptIsAParseError()
    {
        var (code, _, error) = await Run("generate", "--model", TestModels.PathOf("tiny"));
        Assert.NotEqual(0, code);
        Assert.Contains("--prompt", error);
    }

    [Fact]
    public async Task BadModelFolderIsOneClearLine()
    {
        var (code, _, error) = await Run("generate", "--model", "/no/such/model", "--prompt", "x");
        Assert.Equal(ExitCodes.ModelError, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains("/no/such/model", error);
        Assert.DoesNotContain("   at ", error); // no stack trace
    }

    [Fact]
    public async Task InfoShowsTheDetectedFormats()
    {
        var (code, output, error) = await Run("info", "--model", TestModels.PathOf("tiny-static"), "--device", "cpu");
        Assert.True(code == 0, error);
        Assert.Contains("fixed 1 (CFG runs as two calls)", output);
        Assert.Contains("int64[1]", output);
        Assert.Contains("float32[1,4,8,8]", output);
        Assert.Contains("64x64", output);
    }

    [Fact]
    public async Task TheVaeFlagReplacesTheDecoderAndIsCheckedAtLoad()
    {
        // models/test/vae/sdxl-overflow: an fp16 decoder and its float32 variant, which info lists as the fallback.
        var vae = Path.Combine(TestPaths.ModelsDir, "test", "vae", "sdxl-overflow");
        var (code, output, error) = await Run("info", "--model", TestModels.PathOf("tiny-sdxl-olive"), "--device", "cpu", "--vae", vae);
        Assert.True(code == 0, error);
        Assert.Contains("vae decoder", output);
        Assert.Contains("vae_decoder_fp32", output);
        Assert.Contains("float32[?,4,?,?]", output);

        using var dir = new TempDirectory();
        var missing = Path.Combine(dir.Path, "missing-vae");
        (code, _, error) = await Run("generate", "--model", TestModels.PathOf("tiny-sdxl-olive"), "--prompt", "a cat", "--steps", "1",
            "--width", "64", "--height", "64", "--device", "cpu", "--vae", missing, "--out", Path.Combine(dir.Path, "x.png"));
        Assert.Equal(ExitCodes.ModelError, code);
        Assert.Contains("missing-vae", error);
    }

    [Fact]
    public async Task TokenizeJsonGivesIdsAndLengthsFromTheTokenizerAlone()
    {
        using var dir = new TempDirectory();
        // Only the tokenizer files: no ONNX model is needed to tokenize.
        foreach (var file in Directory.GetFiles(Path.Combine(TestModels.PathOf("tiny"), "tokenizer")))
            File.Copy(file, Path.Combine(Directory.CreateDirectory(Path.Combine(dir.Path, "tokenizer")).FullName, Path.GetFileName(file)));
        var prompts = Path.Combine(dir.Path, "prompts.txt");
        File.WriteAllLines(prompts, ["a red circle", "a blue square on a green background"]);

        var (code, output, error) = await Run("tokenize", "--model", dir.Path, "--prompts-file", prompts, "--json");

        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        Assert.Equal(2, json.RootElement.GetArrayLength());
        foreach (var item in json.RootElement.EnumerateArray())
        {
            Assert.Equal(77, item.GetProperty("ids").GetArrayLength());
            Assert.InRange(item.GetProperty("length").GetInt32(), 3, 77);
        }
    }

    [Fact]
    public async Task TokenizeNeedsExactlyOneSource()
    {
        var (code, _, error) = await Run("tokenize", "--model", TestModels.PathOf("tiny"));
        Assert.NotEqual(0, code);
        Assert.Contains("exactly one of --prompt or --prompts-file", error);
    }
}
