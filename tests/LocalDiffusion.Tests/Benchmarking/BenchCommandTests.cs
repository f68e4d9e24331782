using LocalDiffusion.Benchmarking;
using LocalDiffusion.Cli;
using LocalDiffusion.Schedulers;
using SkiaSharp;
using Spectre.Console;

namespace LocalDiffusion.Tests.Benchmarking;

/// <summary><c>localdiffusion schedulers</c> and <c>localdiffusion bench schedulers</c>, run in-process on the tiny model.</summary>
public class BenchCommandTests
{
    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => LocalDiffusion.Tests.Cli.CliRunner.Run(args);

    // A small run; each (option, value) pair in overrides replaces that option's value or, for a flag, is added.
    private static string[] Bench(string outDir, params (string Option, string? Value)[] overrides)
    {
        var options = new Dictionary<string, string?>
        {
            ["--model"] = TestModels.PathOf("tiny"), ["--device"] = "cpu", ["--width"] = "64", ["--height"] = "64",
            ["--schedulers"] = "ddim,Euler a", ["--steps"] = "2,4", ["--seeds"] = "1", ["--reference"] = "ddim@16", ["--out"] = outDir,
        };
        foreach (var (option, value) in overrides) options[option] = value;
        return ["bench", "schedulers", .. options.SelectMany(o => o.Value is null ? [o.Key] : new[] { o.Key, o.Value })];
    }

    [Fact]
    public async Task SchedulersListsEveryRegisteredScheduler()
    {
        var (code, output, error) = await Run("schedulers");
        Assert.True(code == 0, error);
        foreach (var info in SchedulerRegistry.Default.All)
        {
            Assert.Contains(info.Id, output);
            Assert.Contains(info.DisplayName, output);
        }
        Assert.Contains("EulerAncestralDiscreteScheduler", output);
        Assert.Contains("k_euler_ancestral", output);
    }

    [Fact]
    public async Task BenchWritesTheTableFilesPlotsAndGrid()
    {
        using var dir = new TempDirectory();
        var (code, output, error) = await Run(Bench(dir.Path));

        Assert.True(code == 0, error);
        Assert.Contains("| DDIM | ddim | 2 | 2 |", output);
        Assert.Contains("| Euler a | euler_a | 4 | 4 |", output);
        Assert.Contains("errors against `ddim@16`", output);
        foreach (var name in BenchmarkOutput.FileNames)
            Assert.True(File.Exists(Path.Combine(dir.Path, name)), $"{name} was not written");
        Assert.Equal(5, File.ReadAllLines(Path.Combine(dir.Path, BenchmarkOutput.CsvFile)).Length);
        using var grid = SKBitmap.Decode(Path.Combine(dir.Path, BenchmarkOutput.GridFile));
        Assert.Equal(ImageGrid.LabelWidth + 3 * (128 + ImageGrid.Gap) + ImageGrid.Gap, grid.Width);
        using var plot = SKBitmap.Decode(Path.Combine(dir.Path, BenchmarkOutput.LatentPlotFile));
        Assert.Equal(ConvergencePlot.Width, plot.Width);
    }

    [Fact]
    public async Task BenchRefusesToOverwriteUnlessAsked()
    {
        using var dir = new TempDirectory();
        var csv = Path.Combine(dir.Path, BenchmarkOutput.CsvFile);
        File.WriteAllText(csv, "precious");

        var (code, _, error) = await Run(Bench(dir.Path));
        Assert.Equal(1, code);
        Assert.Contains("already exists", error);
        Assert.Equal("precious", File.ReadAllText(csv));
        Assert.False(File.Exists(Path.Combine(dir.Path, BenchmarkOutput.GridFile))); // refused before running

        Assert.Equal(0, (await Run(Bench(dir.Path, ("--overwrite", null)))).Code);
        Assert.StartsWith("scheduler,id,steps", File.ReadAllText(csv));
    }

    [Fact]
    public async Task PromptAndPromptsFileExcludeEachOther()
    {
        using var dir = new TempDirectory();
        var (code, _, error) = await Run(Bench(dir.Path, ("--prompt", "a cat"), ("--prompts", "/no/such/prompts.txt")));
        Assert.Equal(1, code);
        Assert.Contains("--prompt or --prompts, not both", error);
    }

    [Fact]
    public async Task AModelsEvaluationPromptsAreTheDefaultCases()
    {
        using var model = TestModels.CopyOf("tiny");
        File.WriteAllText(Path.Combine(model.Path, "eval_prompts.json"),
            """{"cases": [{"prompt": "a red circle", "seed": 5}, {"prompt": "a blue square", "seed": 6}]}""");
        using var dir = new TempDirectory();

        var (code, output, error) = await Run("bench", "schedulers", "--model", model.Path, "--device", "cpu", "--schedulers", "euler",
            "--steps", "2", "--reference", "euler@8", "--out", dir.Path);

        Assert.True(code == 0, error);
        Assert.Contains("(2 cases)", output);
        Assert.Contains("2 case(s) (2 prompt(s), 2 seed(s))", output);
        Assert.Equal([5L, 6L], ReadCaseSeeds(Path.Combine(dir.Path, BenchmarkOutput.JsonFile)));
    }

    private static IEnumerable<long> ReadCaseSeeds(string json)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("seed").GetInt64()).ToList();
    }

    [Theory]
    [InlineData("--schedulers", "ddim,warp_drive", "Unknown scheduler 'warp_drive'")]
    [InlineData("--steps", "4,eight", "'eight' is not a step count")]
    [InlineData("--reference", "ddim", "NAME@STEPS")]
    [InlineData("--reference", "warp_drive@50", "Unknown scheduler 'warp_drive'")]
    [InlineData("--seeds", "5-1", "'5-1'")]
    [InlineData("--prompts", "/no/such/prompts.txt", "/no/such/prompts.txt")]
    [InlineData("--schedulers", " , ", "names no scheduler")]
    public async Task BadArgumentsAreOneClearLine(string option, string value, string mentions)
    {
        using var dir = new TempDirectory();
        var (code, _, error) = await Run(Bench(dir.Path, (option, value)));
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains(mentions, error);
        Assert.DoesNotContain("   at ", error);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
