using LocalDiffusion.Tests.Embeddings;

namespace LocalDiffusion.Tests.Cli;

/// <summary>
/// <c>generate --embedding PATH</c> (repeatable) and <c>--embeddings-dir DIR</c> on tiny with the table text encoder
/// (TiModels): a prompt naming an embedding draws another picture, one naming none the same picture as without the
/// flags (same PNG bytes); a file that does not fit is a model-format error (exit 2) naming the file and key. SD 3 and
/// FLUX.1 (TiModels.Sd3, TiModels.Flux) take the same flags.
/// </summary>
public sealed class EmbeddingCliTests
{
    private static string[] Common(string prompt, string output) =>
        ["generate", "--model", TiModels.Sd15, "--prompt", prompt, "--negative-prompt", "blue", "--steps", "3", "--seed", "5", "--device", "cpu", "--width", "64", "--height", "64", "--out", output];

    [Fact]
    public async Task TheFlagsLoadEmbeddingsThatPromptsNameByFileName()
    {
        using var dir = new TempDirectory();
        string Out(string name) => Path.Combine(dir.Path, name + ".png");
        async Task<byte[]> Run(string name, params string[] args)
        {
            var (code, _, error) = await CliRunner.Run(args);
            Assert.True(code == 0, error);
            return File.ReadAllBytes(Out(name));
        }
        var plain = await Run("plain", Common("a red circle", Out("plain")));
        var explicitFiles = await Run("explicit", [.. Common("a red circle a1111-style cat-toy", Out("explicit")),
            "--embedding", TiModels.Embedding("sd15", "a1111-style.pt"), "--embedding", TiModels.Embedding("sd15", "cat-toy.safetensors")]);
        Assert.NotEqual(plain, explicitFiles);
        var folder = await Run("folder", [.. Common("a red circle a1111-style cat-toy", Out("folder")), "--embeddings-dir", Path.Combine(TiModels.Root, "embeddings", "sd15")]);
        Assert.Equal(explicitFiles, folder);
        var unused = await Run("unused", [.. Common("a red circle", Out("unused")), "--embeddings-dir", Path.Combine(TiModels.Root, "embeddings", "sd15")]);
        Assert.Equal(plain, unused);
    }

    [Fact]
    public async Task AnEmbeddingOfAnotherWidthIsAModelFormatError()
    {
        using var dir = new TempDirectory();
        var (code, _, error) = await CliRunner.Run([.. Common("a red circle", Path.Combine(dir.Path, "x.png")), "--embedding", TiModels.Embedding("bad", "wide.safetensors")]);
        Assert.Equal(2, code);
        Assert.Contains("wide.safetensors, key \"emb_params\"", error);
        Assert.Contains("48 wide", error);
    }

    // SD 3 and FLUX.1 take the same flags: their CLIP encoders take the files of their widths (TiModels.Sd3 / Flux).
    [Fact]
    public async Task FlowFamiliesTakeTheFlagsAndRefuseAFileOfNoClipWidth()
    {
        using var dir = new TempDirectory();
        string[] Flow(string model, string prompt, string name) =>
            ["generate", "--model", model, "--prompt", prompt, "--steps", "2", "--seed", "5", "--device", "cpu", "--width", "64", "--height", "48", "--out", Path.Combine(dir.Path, name + ".png")];
        async Task<byte[]> Run(string name, params string[] args)
        {
            var (code, _, error) = await CliRunner.Run(args);
            Assert.True(code == 0, error);
            return File.ReadAllBytes(Path.Combine(dir.Path, name + ".png"));
        }
        var plain = await Run("sd3-plain", Flow(TiModels.Sd3, "xl-pair circle", "sd3-plain"));
        var pair = await Run("sd3-pair", [.. Flow(TiModels.Sd3, "xl-pair circle", "sd3-pair"), "--embedding", TiModels.Embedding("sdxl", "xl-pair.safetensors")]);
        Assert.NotEqual(plain, pair);
        Assert.Equal(pair, await Run("sd3-dir", [.. Flow(TiModels.Sd3, "xl-pair circle", "sd3-dir"), "--embeddings-dir", Path.Combine(TiModels.Root, "embeddings", "sdxl")]));

        var (code, _, error) = await CliRunner.Run([.. Flow(TiModels.Flux, "a circle", "flux"), "--embedding", TiModels.Flow("g-only.safetensors")]);
        Assert.Equal(2, code);
        Assert.Contains("g-only.safetensors, key \"emb_params\"", error);
        Assert.Contains("48 wide", error);
    }
}
