using LocalDiffusion.Onnx;

namespace LocalDiffusion.Tests.Performance;

/// <summary>The optimised-model cache: same pictures, really used, rebuilt when damaged, cleared on request (issue 12).</summary>
public class ModelCacheTests
{
    private static readonly string[] Components = ["text_encoder", "unet", "vae_decoder"];

    private static async Task<GenerationResult> Generate(string model, string? cacheDirectory, Action<ModelInfo>? check = null)
    {
        using var pipeline = StableDiffusionPipeline.Load(model, new PipelineOptions
        {
            Device = "cpu", CacheDirectory = cacheDirectory, UseModelCache = cacheDirectory is not null,
        });
        check?.Invoke(pipeline.Info);
        return await pipeline.GenerateAsync(TestModels.Request() with { Steps = 3, Scheduler = "dpmpp_2m" });
    }

    private static void AllAre(ModelCacheStatus status, ModelInfo info) =>
        Assert.All(info.Components, c => Assert.Equal(status, c.Cache));

    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-external")]
    [InlineData("tiny-fp16")]
    public async Task CachedModelsGiveBitIdenticalPictures(string variant)
    {
        using var cache = new TempDirectory();
        var model = TestModels.PathOf(variant);
        var plain = await Generate(model, null, info => AllAre(ModelCacheStatus.NotUsed, info));
        var stored = await Generate(model, cache.Path, info => AllAre(ModelCacheStatus.Stored, info));
        var hit = await Generate(model, cache.Path, info => AllAre(ModelCacheStatus.Hit, info));

        Assert.Equal(plain.FinalLatents, stored.FinalLatents);
        Assert.Equal(plain.FinalLatents, hit.FinalLatents);
        Assert.Equal(plain.Images[0].Rgb, hit.Images[0].Rgb);
        // One entry per component, none inside the model folder.
        Assert.Equal(Components.Order(), new ModelCache(cache.Path).List().Select(e => e.Component).Order());
        Assert.DoesNotContain(Directory.EnumerateFiles(model, "*", SearchOption.AllDirectories), f => f.EndsWith(ModelCache.DataFileName, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AHitRunsTheStoredGraph()
    {
        using var cache = new TempDirectory();
        var model = TestModels.PathOf("tiny");
        var plain = await Generate(model, cache.Path);
        // Zero the stored UNet's weights (same size, so the entry still looks complete): a hit must now draw another picture.
        var unet = new ModelCache(cache.Path).List().Single(e => e.Component == "unet");
        var data = Path.Combine(unet.Path, ModelCache.DataFileName);
        var before = File.GetLastWriteTimeUtc(Path.Combine(unet.Path, "entry.json"));
        File.WriteAllBytes(data, new byte[new FileInfo(data).Length]);
        Thread.Sleep(20);

        var changed = await Generate(model, cache.Path, info => Assert.Equal(ModelCacheStatus.Hit, info.Components.Single(c => c.Name == "unet").Cache));
        Assert.NotEqual(plain.FinalLatents, changed.FinalLatents);
        Assert.True(new ModelCache(cache.Path).List().Single(e => e.Component == "unet").LastUsed > before, "a hit marks the entry as used");
    }

    [Fact]
    public async Task APartialEntryIsRebuilt()
    {
        using var cache = new TempDirectory();
        var model = TestModels.PathOf("tiny-external");
        var plain = await Generate(model, cache.Path);
        var unet = new ModelCache(cache.Path).List().Single(e => e.Component == "unet");
        // A write cut short: the stored weights lose their second half.
        var data = Path.Combine(unet.Path, ModelCache.DataFileName);
        using (var stream = new FileStream(data, FileMode.Open)) stream.SetLength(stream.Length / 2);
        // A loader that died while writing leaves its staging folder behind: it is never read.
        Directory.CreateDirectory(unet.Path + ".tmp-deadbeef");

        var rebuilt = await Generate(model, cache.Path, info =>
        {
            Assert.Equal(ModelCacheStatus.Stored, info.Components.Single(c => c.Name == "unet").Cache);
            Assert.Equal(ModelCacheStatus.Hit, info.Components.Single(c => c.Name == "text_encoder").Cache);
        });
        Assert.Equal(plain.FinalLatents, rebuilt.FinalLatents);
        var hit = await Generate(model, cache.Path, info => AllAre(ModelCacheStatus.Hit, info));
        Assert.Equal(plain.Images[0].Rgb, hit.Images[0].Rgb);
    }

    [Fact]
    public async Task AChangedSourceFileGetsANewEntry()
    {
        using var cache = new TempDirectory();
        using var copy = TestModels.CopyOf("tiny");
        await Generate(copy.Path, cache.Path, info => AllAre(ModelCacheStatus.Stored, info));
        File.SetLastWriteTimeUtc(Path.Combine(copy.Path, "unet", "model.onnx"), DateTime.UtcNow.AddMinutes(-5));

        await Generate(copy.Path, cache.Path, info =>
        {
            Assert.Equal(ModelCacheStatus.Stored, info.Components.Single(c => c.Name == "unet").Cache);
            Assert.Equal(ModelCacheStatus.Hit, info.Components.Single(c => c.Name == "vae_decoder").Cache);
        });
        Assert.Equal(2, new ModelCache(cache.Path).List().Count(e => e.Component == "unet"));
    }

    [Fact]
    public async Task ClearRemovesEntriesAndNothingElse()
    {
        using var cache = new TempDirectory();
        await Generate(TestModels.PathOf("tiny"), cache.Path);
        var mine = Path.Combine(cache.Path, "notes.txt");
        File.WriteAllText(mine, "the user's own file");
        Directory.CreateDirectory(Path.Combine(cache.Path, "unet-0123.tmp-0badf00d"));
        var store = new ModelCache(cache.Path);
        Assert.Equal(3, store.List().Count);

        Assert.True(store.Clear() > 0);
        Assert.Empty(store.List());
        Assert.Equal([mine], Directory.EnumerateFileSystemEntries(cache.Path));
        await Generate(TestModels.PathOf("tiny"), cache.Path, info => AllAre(ModelCacheStatus.Stored, info));
    }

    [Fact]
    public void TheDefaultFolderFollowsTheEnvironment()
    {
        // The test run sets LOCALDIFFUSION_CACHE (TestCache), which takes precedence over the platform folder.
        Assert.Equal(Environment.GetEnvironmentVariable(ModelCache.EnvironmentVariable), ModelCache.DefaultDirectory);
    }
}
