using LocalDiffusion.Pipeline;
using System.Text.Json.Nodes;
using LocalDiffusion.Onnx;
using LocalDiffusion.Tests.Cli;

namespace LocalDiffusion.Tests.Performance;

/// <summary>
/// Issue 20, case 1: clearing the cache deletes only what the cache wrote (recognised by its markers, or an older
/// version's exact layout), keeps every user file, says what it left alone and why, and counts right.
/// </summary>
public class ModelCacheClearTests
{
    private static void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    // Three user folders that the old clear deleted: one with an entry.json, one in tensorrt/, one named *.tmp-*.
    private static string[] UserFiles(string root)
    {
        string[] files =
        [
            Path.Combine(root, "photos", "p.txt"),
            Path.Combine(root, "photos", "entry.json"),
            Path.Combine(root, "tensorrt", "engines", "my.engine"),
            Path.Combine(root, "project.tmp-old", "data.bin"),
        ];
        foreach (var f in files) Write(f, "the user's own " + Path.GetFileName(f));
        File.WriteAllText(files[1], """{"Format": 1, "album": "holidays"}""");
        return files;
    }

    private static async Task StoreTiny(string cacheDirectory)
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cpu", CacheDirectory = cacheDirectory });
        Assert.All(pipeline.Info.Components, c => Assert.Equal(ModelCacheStatus.Stored, c.Cache));
        await Task.CompletedTask;
    }

    [Fact]
    public void UserFoldersThatLookLikeTheCacheAreKeptAndReported()
    {
        using var cache = new TempDirectory();
        var files = UserFiles(cache.Path);

        var result = new ModelCache(cache.Path).Clear();
        Assert.All(files, f => Assert.True(File.Exists(f), f));
        Assert.Empty(result.Entries);
        Assert.Empty(result.Unfinished);
        Assert.Empty(result.TensorRtEngines);
        Assert.Equal(0, result.BytesFreed);
        var reasons = result.LeftAlone.ToDictionary(l => Path.GetRelativePath(cache.Path, l.Path), l => l.Reason);
        Assert.Equal(new[] { "photos", Path.Combine("tensorrt", "engines"), "project.tmp-old" }.Order(StringComparer.Ordinal), reasons.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("no cache tag", reasons["photos"]);
        Assert.Contains("tensorrt-entry.json", reasons[Path.Combine("tensorrt", "engines")]);
        Assert.Contains("not one the cache made", reasons["project.tmp-old"]);
    }

    [Fact]
    public async Task RealEntriesAreRemovedAndCountedBesideUserFolders()
    {
        using var cache = new TempDirectory();
        var files = UserFiles(cache.Path);
        await StoreTiny(cache.Path);
        // A TensorRT engine folder as the engine makes it (its marker), with an engine TensorRT would write there.
        var engines = ModelCache.TensorRtFolder(cache.Path, Path.Combine(TestModels.PathOf("tiny"), "unet", "model.onnx"), new ExecutionDevice(ExecutionProviderKind.TensorRT));
        File.WriteAllBytes(Path.Combine(engines, "TensorrtExecutionProvider_unet.engine"), new byte[64]);
        // A user file dropped into a real entry makes it not only the cache's: kept, and said so.
        var entries = new ModelCache(cache.Path).List();
        var vae = entries.Single(e => e.Component == "vae_decoder").Path;
        File.WriteAllText(Path.Combine(vae, "mine.txt"), "kept");

        var result = new ModelCache(cache.Path).Clear();
        Assert.Equal(2, result.Entries.Count);
        Assert.Equal(0, result.OlderEntries);
        Assert.Equal([engines], result.TensorRtEngines);
        Assert.Contains(result.LeftAlone, l => l.Path == vae && l.Reason.Contains("mine.txt", StringComparison.Ordinal));
        Assert.All(files, f => Assert.True(File.Exists(f), f));
        Assert.True(File.Exists(Path.Combine(vae, "mine.txt")));
        Assert.True(Directory.Exists(Path.Combine(cache.Path, "tensorrt")), "tensorrt/ still holds the user's engines folder");
        Assert.Equal(["vae_decoder"], new ModelCache(cache.Path).List().Select(e => e.Component));
    }

    [Fact]
    public async Task AnOlderVersionsEntryIsRecognisedByItsExactLayout()
    {
        using var cache = new TempDirectory();
        await StoreTiny(cache.Path);
        var entries = new ModelCache(cache.Path).List();
        // Rewrite two entries' entry.json as the previous version wrote it (no tag, key or hashes; sizes only).
        string ToOldFormat(string folder)
        {
            var path = Path.Combine(folder, "entry.json");
            var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            var sizes = new JsonObject();
            foreach (var (name, file) in node["Files"]!.AsObject()) sizes[name] = file!["Bytes"]!.GetValue<long>();
            var old = new JsonObject
            {
                ["Format"] = 1, ["Component"] = node["Component"]!.GetValue<string>(), ["Source"] = node["Source"]!.GetValue<string>(),
                ["OnnxRuntime"] = node["OnnxRuntime"]!.GetValue<string>(), ["Provider"] = node["Provider"]!.GetValue<string>(), ["Files"] = sizes,
            };
            File.WriteAllText(path, old.ToJsonString());
            return folder;
        }
        var oldUnet = ToOldFormat(entries.Single(e => e.Component == "unet").Path);
        var oldVae = ToOldFormat(entries.Single(e => e.Component == "vae_decoder").Path);
        // The same old layout with a file it does not list is not recognised.
        File.WriteAllText(Path.Combine(oldVae, "extra.bin"), "x");

        var result = new ModelCache(cache.Path).Clear();
        Assert.Equal(2, result.Entries.Count);
        Assert.Equal(1, result.OlderEntries);
        Assert.False(Directory.Exists(oldUnet));
        var left = Assert.Single(result.LeftAlone);
        Assert.Equal(oldVae, left.Path);
        Assert.Contains("extra.bin", left.Reason);
    }

    [Fact]
    public async Task TheCliCountsRightAndListsWhatItLeftAlone()
    {
        using var cache = new TempDirectory();
        var files = UserFiles(cache.Path);
        await StoreTiny(cache.Path);

        var (code, output, error) = await CliRunner.Run("cache", "clear", "--cache-dir", cache.Path);
        Assert.True(code == 0, error);
        Assert.Contains("Removed 3 entries", output);
        Assert.Contains("Left alone 3 folders", output);
        Assert.Contains("photos:", output);
        Assert.Contains(Path.Combine("tensorrt", "engines") + ":", output);
        Assert.Contains("project.tmp-old:", output);
        Assert.All(files, f => Assert.True(File.Exists(f), f));
    }
}
