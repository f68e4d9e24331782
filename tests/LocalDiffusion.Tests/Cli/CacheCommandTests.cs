namespace LocalDiffusion.Tests.Cli;

public class CacheCommandTests
{
    [Fact]
    public async Task InfoStoresThenHitsAndCacheListAndClearShowAndEmptyTheFolder()
    {
        using var cache = new TempDirectory();
        var model = TestModels.PathOf("tiny");
        var (code, first, err) = await CliRunner.Run("info", "--model", model, "--device", "cpu", "--cache-dir", cache.Path);
        Assert.True(code == 0, err);
        Assert.Contains("unet Stored", first);
        (_, var second, _) = await CliRunner.Run("info", "--model", model, "--device", "cpu", "--cache-dir", cache.Path);
        Assert.Contains("text_encoder Hit, unet Hit, vae_decoder Hit", second);

        (code, var listed, err) = await CliRunner.Run("cache", "list", "--cache-dir", cache.Path);
        Assert.True(code == 0, err);
        Assert.Contains("3 entries", listed);
        Assert.Contains(Path.Combine(model, "unet", "model.onnx"), listed);

        (code, var cleared, err) = await CliRunner.Run("cache", "clear", "--cache-dir", cache.Path);
        Assert.True(code == 0, err);
        Assert.Contains("Removed 3 entries", cleared);
        (_, listed, _) = await CliRunner.Run("cache", "list", "--cache-dir", cache.Path);
        Assert.Contains("0 entries", listed);
    }
}

public class VaeTilingOptionTests
{
    [Fact]
    public async Task GenerateTakesVaeTilingAndRefusesOtherValues()
    {
        using var dir = new TempDirectory();
        var model = TestModels.PathOf("tiny");
        var off = Path.Combine(dir.Path, "off.png");
        var (code, _, err) = await CliRunner.Run("generate", "--model", model, "--device", "cpu", "--prompt", "x", "--seed", "1", "--steps", "2",
            "--width", "128", "--height", "128", "--vae-tiling", "off", "--out", off);
        Assert.True(code == 0, err);
        (code, _, err) = await CliRunner.Run("generate", "--model", model, "--device", "cpu", "--prompt", "x", "--steps", "2", "--vae-tiling", "sometimes", "--out", Path.Combine(dir.Path, "x.png"));
        Assert.NotEqual(0, code);
        Assert.Contains("sometimes", err);
    }
}
