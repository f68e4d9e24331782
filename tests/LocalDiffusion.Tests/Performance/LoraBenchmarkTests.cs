using System.Text.Json;
using LocalDiffusion.Benchmarking;
using LocalDiffusion.Errors;
using LocalDiffusion.Tests.Cli;

namespace LocalDiffusion.Tests.Performance;

// bench lora on the tiny model with models/test/lora/kohya_fp16.safetensors (tools/build_lora_test_files.py): what it
// reports, not how fast (no timed assertions). The latents checks are exact: going back to no LoRA must restore the
// model's own weights bit for bit.
public class LoraBenchmarkTests
{
    private static readonly string Lora = Path.Combine(TestPaths.ModelsDir, "test", "lora", "kohya_fp16.safetensors");

    [Fact]
    public async Task BenchLoraRunsTheSequenceAndFindsTheNoLoraPictureUnchanged()
    {
        using var dir = new TempDirectory();
        var json = Path.Combine(dir.Path, "lora.json");
        var (code, output, err) = await CliRunner.Run("bench", "lora", "--model", TestModels.PathOf("tiny"), "--device", "cpu",
            "--lora", Lora, "--size", "64x64", "--steps", "2", "--low-memory", "--json", json);
        Assert.True(code == 0, err);
        Assert.Contains("back to no LoRA", output);

        using var report = JsonDocument.Parse(File.ReadAllText(json));
        var rows = report.RootElement.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(["warm-up, no LoRA", "no LoRA", "apply the LoRA", "same LoRA again", "change its weight", "back to no LoRA", "re-apply the LoRA"],
            rows.Select(r => r.GetProperty("label").GetString()));
        Assert.Equal([false, true, false, false, false, true, false], rows.Select(r => r.GetProperty("latentsEqualBaseline").GetBoolean()));
        Assert.Equal("kohya_fp16.safetensors:0.5", rows[4].GetProperty("loras").GetString());
        Assert.All(rows, r => Assert.True(r.GetProperty("peakResidentBytes").GetInt64() > 0));
        Assert.Equal("low_memory=1", report.RootElement.GetProperty("tuning").GetString());
        // The LoRA's LoCon layer is a Conv: its session opens from the cache's graph all the same (CachedConvLoraTests).
        Assert.Equal(["stored", "cache", "cache", "cache", "cache", "cache", "cache"], rows.Select(r => r.GetProperty("unetSession").GetString()));
    }

    // Issue #19's alternative: the same merged weights written as a weights-only rewrite of the cached graph must give the
    // override path's latents bit for bit (same weights, same graph; compared through each row's SHA-256), the LoRA must
    // still change the picture (a rewrite pointing at the model's own data would not), a set seen before must open from
    // its file without writing again, and the bench must leave no rewrite in the cache folder.
    [Fact]
    public async Task TheRewriteVariantGivesTheOverridePathsLatentsBitForBit()
    {
        using var dir = new TempDirectory();
        async Task<LoraBenchmarkReport> Run(string variant) => await LoraBenchmark.RunAsync(new LoraBenchmarkOptions
        {
            Model = TestModels.PathOf("tiny"), Device = "cpu", Lora = Lora, Width = 64, Height = 64, Steps = 2, Variant = variant,
            CacheDirectory = dir.Path, Engine = new LocalDiffusion.PipelineOptions { LowMemory = true },
        }, cancellationToken: TestContext.Current.CancellationToken);
        var overrides = await Run("override");
        var rewrite = await Run("rewrite");

        Assert.Equal("rewrite", rewrite.Variant);
        Assert.Equal(overrides.Rows.Select(r => r.LatentsSha256), rewrite.Rows.Select(r => r.LatentsSha256));
        Assert.NotEqual(rewrite.Rows[1].LatentsSha256, rewrite.Rows[2].LatentsSha256);
        Assert.All(overrides.Rows, r => Assert.Equal(0, r.BytesWritten));
        // Written for each new set (apply, change weight), not for the same set again nor when re-applying it.
        Assert.Equal([false, false, true, false, true, false, false], rewrite.Rows.Select(r => r.BytesWritten > 0));
        Assert.Empty(Directory.EnumerateFiles(dir.Path, "lora-*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task AMissingLoraFileIsRefusedBeforeLoading()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-lora-" + Guid.NewGuid().ToString("N") + ".safetensors");
        var e = await Assert.ThrowsAsync<InvalidRequestException>(() => LoraBenchmark.RunAsync(new LoraBenchmarkOptions
        {
            Model = TestModels.PathOf("tiny"), Lora = missing, Steps = 1,
        }, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains(missing, e.Message);
    }
}
