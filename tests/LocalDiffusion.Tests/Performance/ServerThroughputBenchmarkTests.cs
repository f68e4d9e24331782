using System.Text.Json;
using LocalDiffusion.Tests.Cli;

namespace LocalDiffusion.Tests.Performance;

/// <summary>
/// <c>bench server</c>: a real server on a loopback port and real HTTP clients. No timings are checked, only that every
/// request was answered and counted, and that the batch sizes the server reports respect --max-batch.
/// </summary>
public class ServerThroughputBenchmarkTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    public async Task EveryClientsRequestsAreAnsweredAndCounted(int maxBatch)
    {
        using var dir = new TempDirectory();
        var json = Path.Combine(dir.Path, "server.json");
        var (code, output, err) = await CliRunner.Run("bench", "server", "--model", TestModels.PathOf("tiny"), "--device", "cpu",
            "--size", "64x64", "--steps", "2", "--clients", "1,3", "--requests-per-client", "2", "--max-batch", maxBatch.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json", json);
        Assert.True(code == 0, err);
        Assert.Contains("p95", output);

        using var report = JsonDocument.Parse(File.ReadAllText(json));
        var root = report.RootElement;
        Assert.Equal(maxBatch, root.GetProperty("maxBatch").GetInt32());
        var rows = root.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal([1, 3], rows.Select(r => r.GetProperty("clients").GetInt32()));
        Assert.Equal([2, 6], rows.Select(r => r.GetProperty("requests").GetInt32()));
        foreach (var row in rows)
        {
            Assert.True(row.GetProperty("imagesPerSecond").GetDouble() > 0);
            Assert.True(row.GetProperty("p95Seconds").GetDouble() >= row.GetProperty("p50Seconds").GetDouble());
            var batch = row.GetProperty("meanBatchSize").GetDouble();
            Assert.InRange(batch, 1, Math.Min(maxBatch, row.GetProperty("clients").GetInt32()));
        }
    }

    [Fact]
    public async Task ABadClientListIsNamed()
    {
        var (code, _, err) = await CliRunner.Run("bench", "server", "--model", TestModels.PathOf("tiny"), "--clients", "1,0");
        Assert.Equal(1, code);
        Assert.Contains("--clients", err);
        Assert.Contains("'0'", err);
    }
}
