using System.Text.Json;
using LocalDiffusion.Tests.Cli;

namespace LocalDiffusion.Tests.Performance;

public class BatchBenchmarkTests
{
    [Fact]
    public async Task BenchBatchTimesBothWaysAndFindsTheResultsEqual()
    {
        using var dir = new TempDirectory();
        var json = Path.Combine(dir.Path, "batch.json");
        var (code, output, err) = await CliRunner.Run("bench", "batch", "--model", TestModels.PathOf("tiny"), "--device", "cpu",
            "--size", "64x64", "--steps", "3", "--requests", "3", "--repeats", "2", "--json", json);
        Assert.True(code == 0, err);
        Assert.Contains("one batch", output);

        using var report = JsonDocument.Parse(File.ReadAllText(json));
        var root = report.RootElement;
        Assert.Equal(3, root.GetProperty("requests").GetInt32());
        Assert.Equal(64, root.GetProperty("width").GetInt32());
        Assert.Equal(2, root.GetProperty("sequentialSeconds").GetArrayLength());
        Assert.Equal(2, root.GetProperty("batchedSeconds").GetArrayLength());
        Assert.True(root.GetProperty("batchedImagesPerSecond").GetDouble() > 0);
        // Guided requests: the batch gives each request exactly its result alone.
        Assert.Equal(0, root.GetProperty("maxLatentDifference").GetSingle());
    }
}
