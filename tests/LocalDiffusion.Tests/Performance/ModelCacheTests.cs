using LocalDiffusion.Model;
using LocalDiffusion.Pipeline;
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
        // Zero the stored UNet's weights and record them as written (what the cache would have stored had ONNX Runtime
        // written zeros): a hit must now draw another picture, so it runs the stored graph, not the source.
        var unet = new ModelCache(cache.Path).List().Single(e => e.Component == "unet");
        var data = Path.Combine(unet.Path, ModelCache.DataFileName);
        var entryFile = Path.Combine(unet.Path, "entry.json");
        var before = File.GetLastWriteTimeUtc(entryFile);
        File.WriteAllBytes(data, new byte[new FileInfo(data).Length]);
        var entry = System.Text.Json.JsonSerializer.Deserialize<EntryRecord>(File.ReadAllText(entryFile))!;
        entry.Files[ModelCache.DataFileName] = CacheFileCheck.Record(data);
        File.WriteAllText(entryFile, System.Text.Json.JsonSerializer.Serialize(entry));
        File.SetLastWriteTimeUtc(entryFile, before);
        Thread.Sleep(20);

        var changed = await Generate(model, cache.Path, info => Assert.Equal(ModelCacheStatus.Hit, info.Components.Single(c => c.Name == "unet").Cache));
        Assert.NotEqual(plain.FinalLatents, changed.FinalLatents);
        Assert.True(new ModelCache(cache.Path).List().Single(e => e.Component == "unet").LastUsed > before, "a hit marks the entry as used");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AStoredFileDamagedInPlaceIsRebuiltWithANote(bool restoreTime)
    {
        // Issue 20, case 2: same size, and (restoreTime) the same modification time, so only the content tells.
        using var cache = new TempDirectory();
        var model = TestModels.PathOf("tiny");
        var fresh = await Generate(model, null);
        await Generate(model, cache.Path);
        var unet = new ModelCache(cache.Path).List().Single(e => e.Component == "unet");
        var data = Path.Combine(unet.Path, ModelCache.DataFileName);
        var time = File.GetLastWriteTimeUtc(data);
        var bytes = File.ReadAllBytes(data);
        for (var i = 0; i < bytes.Length; i += 7) bytes[i] ^= 0x5a; // scrambled weights: a different picture, or NaN
        File.WriteAllBytes(data, bytes);
        if (restoreTime) File.SetLastWriteTimeUtc(data, time);

        var rebuilt = await Generate(model, cache.Path, info =>
        {
            Assert.Equal(ModelCacheStatus.Stored, info.Components.Single(c => c.Name == "unet").Cache);
            Assert.Equal(ModelCacheStatus.Hit, info.Components.Single(c => c.Name == "vae_decoder").Cache);
            var note = Assert.Single(info.DeviceNotes, n => n.StartsWith("unet:", StringComparison.Ordinal));
            Assert.Contains("rebuilt", note);
            Assert.Contains(ModelCache.DataFileName, note);
        });
        Assert.Equal(fresh.FinalLatents, rebuilt.FinalLatents);
        Assert.Equal(fresh.Images[0].Rgb, rebuilt.Images[0].Rgb);
        // Rebuilt once: the next start is a plain hit again, without a note.
        await Generate(model, cache.Path, info =>
        {
            AllAre(ModelCacheStatus.Hit, info);
            Assert.Empty(info.DeviceNotes);
        });
    }

    [Fact]
    public async Task ATouchedButUnchangedFileIsStillAHit()
    {
        using var cache = new TempDirectory();
        var model = TestModels.PathOf("tiny");
        await Generate(model, cache.Path);
        var unet = new ModelCache(cache.Path).List().Single(e => e.Component == "unet");
        File.SetLastWriteTimeUtc(Path.Combine(unet.Path, ModelCache.DataFileName), DateTime.UtcNow.AddMinutes(-3));

        await Generate(model, cache.Path, info =>
        {
            AllAre(ModelCacheStatus.Hit, info);
            Assert.Empty(info.DeviceNotes);
        });
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
        var model = TestModels.PathOf("tiny");
        await Generate(model, cache.Path);
        var mine = Path.Combine(cache.Path, "notes.txt");
        File.WriteAllText(mine, "the user's own file");
        // A loader that died while writing leaves its staging folder (with its marker) behind.
        var staging = new ModelCache(cache.Path).SlotFor(Path.Combine(model, "unet", "model.onnx"), new ExecutionDevice(ExecutionProviderKind.Cpu), "other").BeginStore();
        Assert.NotNull(staging);
        File.WriteAllBytes(Path.Combine(staging, ModelCache.DataFileName), new byte[100]);
        var store = new ModelCache(cache.Path);
        Assert.Equal(3, store.List().Count);

        var result = store.Clear();
        Assert.Equal(3, result.Entries.Count);
        Assert.Equal([staging], result.Unfinished);
        Assert.True(result.BytesFreed > 100);
        Assert.Empty(result.LeftAlone);
        Assert.Empty(store.List());
        Assert.Equal([mine], Directory.EnumerateFileSystemEntries(cache.Path));
        await Generate(model, cache.Path, info => AllAre(ModelCacheStatus.Stored, info));
    }

    [Fact]
    public async Task AWriteThatFailsStoresNothingAndIsNotCalledARefusedGraph()
    {
        // What a full disk does to the store, made certain: a folder where ONNX Runtime writes the optimised model. The
        // fused graph is not at fault, so the model still opens fused (the same picture as without a cache), nothing is
        // left in the cache (no unfused graph under the fused graph's key), and the note says what happened.
        using var cache = new TempDirectory();
        var model = TestModels.PathOf("tiny");
        var plain = await Generate(model, null);
        ModelCache.StagingCreated = staging => Directory.CreateDirectory(Path.Combine(staging, ModelCache.ModelFileName));
        GenerationResult blocked;
        try
        {
            blocked = await Generate(model, cache.Path, info =>
            {
                AllAre(ModelCacheStatus.NotUsed, info);
                Assert.Contains(info.DeviceNotes, n => n.StartsWith("unet: the optimised graph was not stored in the cache", StringComparison.Ordinal));
                Assert.DoesNotContain(info.DeviceNotes, n => n.Contains("refused the fused graph", StringComparison.Ordinal));
                Assert.StartsWith("fused by the engine", info.UnetAttention, StringComparison.Ordinal);
            });
        }
        finally
        {
            ModelCache.StagingCreated = null;
        }
        Assert.Equal(plain.FinalLatents, blocked.FinalLatents);
        Assert.Empty(new ModelCache(cache.Path).List());
        Assert.Empty(Directory.EnumerateFileSystemEntries(cache.Path));
        // Once the disk has room again, the next start stores the fused graph.
        await Generate(model, cache.Path, info => AllAre(ModelCacheStatus.Stored, info));
    }

    [Fact]
    public void TheDefaultFolderFollowsTheEnvironment()
    {
        // The test run sets LOCALDIFFUSION_CACHE (TestCache), which takes precedence over the platform folder.
        Assert.Equal(Environment.GetEnvironmentVariable(ModelCache.EnvironmentVariable), ModelCache.DefaultDirectory);
    }
}
