using System.Text.Json;
using LocalDiffusion.Tests.Cli;

namespace LocalDiffusion.Tests.Performance;

public class PipelineBenchmarkTests
{
    [Fact]
    public async Task AGenerationReportsWhereItsTimeWent()
    {
        var result = await TestModels.Pipeline("tiny-static").GenerateAsync(TestModels.Request() with
        {
            Width = null, Height = null, Steps = 5, Scheduler = "heun",
        });
        var t = result.Timings;
        Assert.Equal(result.UnetEvaluations, t.Evaluations.Count);
        Assert.Equal(result.UnetEvaluations, t.UnetCalls.Count);
        Assert.Equal(result.UnetEvaluations, t.UnetRuns.Count);
        for (var i = 0; i < t.Evaluations.Count; i++)
        {
            Assert.True(t.UnetRuns[i] > TimeSpan.Zero && t.UnetRuns[i] <= t.UnetCalls[i], $"evaluation {i}: Run {t.UnetRuns[i]} inside call {t.UnetCalls[i]}");
            Assert.True(t.UnetCalls[i] <= t.Evaluations[i], $"evaluation {i}: call {t.UnetCalls[i]} inside evaluation {t.Evaluations[i]}");
        }
        Assert.True(t.TextEncoder > TimeSpan.Zero && t.VaeDecode > TimeSpan.Zero);
        Assert.InRange(t.EngineOverheadShare, 0, 1);
        var stages = t.Tokenize + t.TextEncoder + t.Prepare + t.VaeDecode + t.Evaluations.Aggregate(TimeSpan.Zero, (a, b) => a + b);
        Assert.True(stages <= result.Elapsed, $"stages {stages} fit in the generation's {result.Elapsed}");
    }

    [Fact]
    public async Task BenchPipelineWritesItsReport()
    {
        using var dir = new TempDirectory();
        var json = Path.Combine(dir.Path, "bench.json");
        var (code, output, err) = await CliRunner.Run("bench", "pipeline", "--model", TestModels.PathOf("tiny"), "--device", "cpu",
            "--size", "64x64", "--steps", "3", "--repeats", "2", "--scheduler", "euler", "--json", json);
        Assert.True(code == 0, err);
        Assert.Contains("later starts (from the cache)", output);

        using var report = JsonDocument.Parse(File.ReadAllText(json));
        var root = report.RootElement;
        Assert.Equal(64, root.GetProperty("width").GetInt32());
        Assert.Equal(3, root.GetProperty("steps").GetInt32());
        var evaluations = root.GetProperty("evaluations").GetInt32();
        Assert.True(root.GetProperty("loadWarmSeconds").GetDouble() > 0);
        Assert.Equal(evaluations, root.GetProperty("steady").GetProperty("unetCalls").GetArrayLength());
        Assert.True(root.GetProperty("peakResidentBytes").GetInt64() > 0);
        // Euler keeps no history, so after the first evaluation (which makes the generation's buffers) nothing is due.
        Assert.True(root.GetProperty("allocatedBytesPerStep").GetDouble() <= 256, $"the loop allocates almost nothing per step: {root.GetProperty("allocatedBytesPerStep")}");
    }

    [Fact]
    public async Task BenchPipelineRefusesABadSize()
    {
        var (code, _, err) = await CliRunner.Run("bench", "pipeline", "--model", TestModels.PathOf("tiny"), "--size", "64by64");
        Assert.NotEqual(0, code);
        Assert.Contains("--size '64by64'", err);
    }
}
