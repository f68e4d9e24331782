using LocalDiffusion.Pipeline;
using System.Text.Json;
using LocalDiffusion.Benchmarking;
using LocalDiffusion.Evaluation;

namespace LocalDiffusion.Tests.Benchmarking;

/// <summary>The adherence column with the shapes model and its evaluation set.</summary>
public class ShapesAdherenceTests
{
    private static string ShapesModel()
    {
        var dir = Path.Combine(TestPaths.ModelsDir, "shapes");
        if (!File.Exists(Path.Combine(dir, "eval_prompts.json")))
            Assert.Skip($"{dir} has no eval_prompts.json: this test needs the shapes model.");
        return dir;
    }

    // The first two cases of the shipped evaluation set, as a prompts file of their own.
    private static string TwoCases(TempDirectory dir, string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(model, "eval_prompts.json")));
        var cases = doc.RootElement.GetProperty("cases").EnumerateArray().Take(2).Select(c => c.GetRawText());
        var file = Path.Combine(dir.Path, "two.json");
        File.WriteAllText(file, $$"""{"cases": [{{string.Join(",", cases)}}]}""");
        return file;
    }

    [Fact]
    public async Task TheScoreIsTheAnalysersMatchFractionAveragedOverCases()
    {
        var model = ShapesModel();
        using var dir = new TempDirectory();
        var file = TwoCases(dir, model);
        using var pipeline = StableDiffusionPipeline.Load(model, new PipelineOptions { Device = "cpu" });
        var options = new SchedulerBenchmarkOptions
        {
            Schedulers = ["euler"],
            Steps = [3, 12],
            Cases = BenchmarkCaseFile.Load(file, [1], overrideFileSeeds: false),
            Reference = new ReferenceSolution("euler", 24),
            AdherenceScorer = ShapesAdherenceScorer.Load(file),
        };

        var report = await new SchedulerBenchmark(pipeline).RunAsync(options);

        // Independently: generate each case, analyse it, count matching attributes out of four.
        var expected = ShapesEvaluationSet.Load(file);
        foreach (var row in report.Rows)
        {
            var fractions = new List<double>();
            foreach (var c in expected)
            {
                var image = (await pipeline.GenerateAsync(new GenerationRequest { Prompt = c.Prompt, Seed = c.Seed, Steps = row.Steps, Scheduler = "euler" })).Images[0];
                var found = ShapesAnalyser.Analyse(image.Rgb, image.Width, image.Height);
                fractions.Add(new[] { found.Color == c.Expected.Color, found.Background == c.Expected.Background,
                    found.Shape == c.Expected.Shape, found.Position == c.Expected.Position }.Count(m => m) / 4.0);
            }
            Assert.Equal(fractions.Average(), row.Adherence!.Value, 1e-12);
        }
        Assert.Contains("adherence (shapes)", MarkdownReport.Format(report));
    }

    [Fact]
    public void APromptOutsideTheSetIsNamed()
    {
        var scorer = ShapesAdherenceScorer.Load(Path.Combine(ShapesModel(), "eval_prompts.json"));
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() =>
            scorer.Score(new BenchmarkCase("a purple dodecahedron", 1), new LocalDiffusion.Imaging.GeneratedImage(8, 8, new byte[8 * 8 * 3])));
        Assert.Contains("a purple dodecahedron", e.Message);
    }

    [Fact]
    public async Task TheCliScoresAShapesEvaluationSet()
    {
        var model = ShapesModel();
        using var dir = new TempDirectory();
        var file = TwoCases(dir, model);
        var outDir = Path.Combine(dir.Path, "out");

        var (code, output, error) = await LocalDiffusion.Tests.Cli.CliRunner.Run("bench", "schedulers", "--model", model, "--device", "cpu", "--schedulers", "euler",
            "--steps", "3", "--reference", "euler@12", "--prompts", file, "--out", outDir);

        Assert.True(code == 0, error);
        Assert.Contains("adherence scored by the shapes analyser", output);
        Assert.Contains("adherence", File.ReadAllLines(Path.Combine(outDir, BenchmarkOutput.CsvFile))[0]);
    }
}
