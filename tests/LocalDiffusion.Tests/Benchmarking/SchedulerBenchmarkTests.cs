using System.Text.Json;
using LocalDiffusion.Benchmarking;
using LocalDiffusion.Imaging;
using SkiaSharp;

namespace LocalDiffusion.Tests.Benchmarking;

/// <summary>Real benchmark runs on the tiny test model: rows, measurements, convergence, reports and pictures.</summary>
public class SchedulerBenchmarkTests
{
    private static readonly SchedulerBenchmarkOptions Small = new()
    {
        Schedulers = ["ddim", "euler"],
        Steps = [8, 2],
        Cases = [new BenchmarkCase("a red circle on a blue background", 3)],
        Reference = new ReferenceSolution("DDIM", 32),
        Width = 64,
        Height = 64,
    };

    // One run shared by the tests that only read its report.
    private static readonly Lazy<Task<SchedulerBenchmarkReport>> SmallReport =
        new(() => new SchedulerBenchmark(TestModels.Pipeline("tiny")).RunAsync(Small));

    [Fact]
    public async Task EverySchedulerAndStepCountHasAMeasuredRow()
    {
        var report = await SmallReport.Value;

        Assert.Equal([("ddim", 2), ("ddim", 8), ("euler", 2), ("euler", 8)], report.Rows.Select(r => (r.SchedulerId, r.Steps)));
        Assert.Equal(new ReferenceSolution("ddim", 32), report.Reference); // the name resolved to the registry id
        Assert.All(report.Rows, r =>
        {
            Assert.Equal(r.Steps, r.UnetEvaluations); // first-order samplers: one evaluation per step
            Assert.True(r.WallMilliseconds > 0 && r.PeakWorkingSetBytes > 0 && r.AllocatedBytesPerRun > 0, r.ToString());
            Assert.Equal(r.WallMilliseconds / r.Steps, r.MillisecondsPerStep, 9);
            Assert.True(r.LatentRmse > 0 && double.IsFinite(r.LatentPsnr), r.ToString());
            Assert.Null(r.Adherence);
            Assert.Equal(64, r.Sample!.Width);
        });
    }

    [Fact]
    public async Task ErrorsAreTheRmseAndPsnrOfTheFinalLatentsAndImages()
    {
        var report = await SmallReport.Value;
        var pipeline = TestModels.Pipeline("tiny");
        GenerationRequest Request(string scheduler, int steps) => new()
        {
            Prompt = Small.Cases[0].Prompt, Seed = Small.Cases[0].Seed, Scheduler = scheduler, Steps = steps, Width = 64, Height = 64,
        };
        var run = await pipeline.GenerateAsync(Request("euler", 8));
        var reference = await pipeline.GenerateAsync(Request("ddim", 32));

        // The definitions, computed here directly: sqrt(mean((x − ref)²)) and 20·log10(peak / RMSE).
        var latentRmse = Math.Sqrt(run.FinalLatents.Zip(reference.FinalLatents, (a, b) => ((double)a - b) * ((double)a - b)).Average());
        var imageRmse = Math.Sqrt(run.Images[0].Rgb.Zip(reference.Images[0].Rgb, (a, b) => (double)(a - b) * (a - b)).Average());
        var peak = (double)reference.FinalLatents.Max() - reference.FinalLatents.Min();
        var row = report.Rows.Single(r => r.SchedulerId == "euler" && r.Steps == 8);
        Assert.Equal(latentRmse, row.LatentRmse, 1e-9);
        Assert.Equal(imageRmse, row.ImageRmse, 1e-9);
        Assert.Equal(peak, report.LatentPeak, 1e-6);
        Assert.Equal(20 * Math.Log10(peak / latentRmse), row.LatentPsnr, 1e-6);
        Assert.Equal(20 * Math.Log10(255 / imageRmse), row.ImagePsnr, 1e-6);
    }

    [Fact]
    public async Task ADeterministicSchedulerConvergesToItsOwnHighStepSolution()
    {
        var report = await new SchedulerBenchmark(TestModels.Pipeline("tiny")).RunAsync(Small with
        {
            Schedulers = ["ddim"],
            Steps = [4, 16, 64],
            Reference = new ReferenceSolution("ddim", 64),
        });
        var (four, sixteen, same) = (report.Rows[0], report.Rows[1], report.Rows[2]);

        Assert.True(sixteen.LatentRmse < four.LatentRmse / 2, $"latent RMSE {four.LatentRmse} at 4 steps, {sixteen.LatentRmse} at 16");
        Assert.True(sixteen.ImageRmse < four.ImageRmse, $"image RMSE {four.ImageRmse} at 4 steps, {sixteen.ImageRmse} at 16");
        Assert.True(sixteen.LatentPsnr > four.LatentPsnr);
        // The reference's own setting reproduces it exactly.
        Assert.Equal(0, same.LatentRmse);
        Assert.Equal(double.PositiveInfinity, same.ImagePsnr);
    }

    [Fact]
    public async Task MarkdownCsvAndJsonHoldOneLinePerRow()
    {
        var report = await SmallReport.Value;

        var markdown = MarkdownReport.Format(report).Split('\n');
        var tableRows = markdown.Where(l => l.StartsWith("| DDIM |") || l.StartsWith("| Euler |")).ToList();
        Assert.Equal(4, tableRows.Count);
        Assert.Contains(markdown, l => l.StartsWith("| scheduler | id | steps | UNet evals |"));
        Assert.Contains("| DDIM | ddim | 8 | 8 |", tableRows[1]);

        var csv = CsvReport.Format(report).TrimEnd().Split('\n').Select(l => l.TrimEnd('\r').Split(',')).ToList();
        Assert.Equal(5, csv.Count);
        var header = csv[0].ToList();
        Assert.All(csv, line => Assert.Equal(header.Count, line.Length));
        Assert.Equal(["ddim", "ddim", "euler", "euler"], csv.Skip(1).Select(l => l[header.IndexOf("id")]));
        Assert.Equal(["2", "8", "2", "8"], csv.Skip(1).Select(l => l[header.IndexOf("steps")]));
        var rmse = double.Parse(csv[2][header.IndexOf("latent_rmse")], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(report.Rows[1].LatentRmse, rmse, 1e-5);

        using var json = JsonDocument.Parse(JsonReport.Format(report));
        var rows = json.RootElement.GetProperty("rows");
        Assert.Equal(4, rows.GetArrayLength());
        Assert.Equal("euler", rows[3].GetProperty("schedulerId").GetString());
        Assert.Equal(8, rows[3].GetProperty("unetEvaluations").GetInt32());
        Assert.Equal("ddim", json.RootElement.GetProperty("reference").GetProperty("scheduler").GetString());
        Assert.False(rows[0].TryGetProperty("sample", out _)); // pictures are not serialized
    }

    [Fact]
    public async Task PlotAndGridDecodeWithTheirDocumentedSizes()
    {
        var report = await SmallReport.Value;

        using var plot = SKBitmap.Decode(ConvergencePlot.Render(report));
        Assert.Equal((ConvergencePlot.Width, ConvergencePlot.Height), (plot.Width, plot.Height));
        Assert.True(Colours(plot) > 5, "the plot has lines in several colours");

        using var grid = SKBitmap.Decode(ImageGrid.Render(report));
        // 64-pixel pictures are doubled to reach the 128-pixel minimum cell; 2 step columns + the reference, 2 scheduler rows.
        Assert.Equal(ImageGrid.LabelWidth + 3 * (128 + ImageGrid.Gap) + ImageGrid.Gap, grid.Width);
        Assert.Equal(ImageGrid.TitleHeight + ImageGrid.HeaderHeight + 2 * (128 + ImageGrid.Gap) + ImageGrid.Gap, grid.Height);
        // The top-left cell is DDIM at 2 steps, each pixel doubled.
        var sample = report.Rows[0].Sample!;
        var (x0, y0) = (ImageGrid.LabelWidth, ImageGrid.TitleHeight + ImageGrid.HeaderHeight);
        foreach (var (x, y) in new[] { (0, 0), (10, 5), (63, 63) })
        {
            var pixel = grid.GetPixel(x0 + 2 * x + 1, y0 + 2 * y + 1);
            var i = (y * sample.Width + x) * 3;
            Assert.Equal((sample.Rgb[i], sample.Rgb[i + 1], sample.Rgb[i + 2]), (pixel.Red, pixel.Green, pixel.Blue));
        }
        // The last column's first cell is the reference picture.
        var reference = report.ReferenceSample!;
        var corner = grid.GetPixel(x0 + 2 * (128 + ImageGrid.Gap) + 2 * 20 + 1, y0 + 2 * 30 + 1);
        var j = (30 * reference.Width + 20) * 3;
        Assert.Equal((reference.Rgb[j], reference.Rgb[j + 1], reference.Rgb[j + 2]), (corner.Red, corner.Green, corner.Blue));
    }

    [Fact]
    public void TextRendersWithTheBundledNativeAssets()
    {
        if (!ConvergencePlot.CanDrawText) Assert.Skip("No font is installed on this machine; plots are drawn without text here.");
        using var font = new SKFont(SKFontManager.Default.MatchFamily("DejaVu Sans") ?? SKTypeface.Default, 20);
        Assert.True(font.MeasureText("UNet evaluations") > 50);
    }

    [Fact]
    public async Task AnAdherenceScorerAddsItsMeanScore()
    {
        var scorer = new MeanRed();
        var options = Small with { Schedulers = ["euler"], Steps = [2], Cases = BenchmarkCase.Cross(["a red square"], [1, 2]), AdherenceScorer = scorer };
        var report = await new SchedulerBenchmark(TestModels.Pipeline("tiny")).RunAsync(options);

        var pipeline = TestModels.Pipeline("tiny");
        var scores = new List<double>();
        foreach (var c in options.Cases)
        {
            var image = (await pipeline.GenerateAsync(new GenerationRequest
            {
                Prompt = c.Prompt, Seed = c.Seed, Scheduler = "euler", Steps = 2, Width = 64, Height = 64,
            })).Images[0];
            scores.Add(scorer.Score(c, image));
        }
        Assert.Equal(scores.Average(), report.Rows.Single().Adherence!.Value, 1e-12);
        Assert.Equal("red", report.AdherenceScorer);
        Assert.Contains("adherence (red)", MarkdownReport.Format(report));
    }

    [Fact]
    public async Task BadOptionsFailBeforeAnythingRuns()
    {
        var benchmark = new SchedulerBenchmark(TestModels.Pipeline("tiny"));
        var unknown = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => benchmark.RunAsync(Small with { Schedulers = ["ddim", "warp_drive"] }));
        Assert.Contains("'warp_drive'", unknown.Message);
        Assert.Contains("euler_a", unknown.Message); // lists the known ones
        await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => benchmark.RunAsync(Small with { Steps = [4, 0] }));
        await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => benchmark.RunAsync(Small with { Cases = [] }));
        await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => benchmark.RunAsync(Small with { Reference = new ReferenceSolution("nope", 10) }));
        await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => benchmark.RunAsync(Small with { Repeats = 0 }));
    }

    [Fact]
    public async Task CancellationStopsTheRun()
    {
        using var cts = new CancellationTokenSource();
        var progress = new Inline(p => { if (p.Completed >= 1) cts.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new SchedulerBenchmark(TestModels.Pipeline("tiny")).RunAsync(Small, progress, cts.Token));
    }

    private static int Colours(SKBitmap bitmap)
    {
        var seen = new HashSet<uint>();
        for (var y = 0; y < bitmap.Height; y += 3)
            for (var x = 0; x < bitmap.Width; x += 3)
            {
                var c = bitmap.GetPixel(x, y);
                c.ToHsv(out _, out var saturation, out _);
                if (saturation > 50) seen.Add((uint)c & 0xE0E0E0);
            }
        return seen.Count;
    }

    /// <summary>A real, simple score: the mean red channel (0–1).</summary>
    private sealed class MeanRed : IAdherenceScorer
    {
        public string Name => "red";

        public double Score(BenchmarkCase testCase, GeneratedImage image)
        {
            long red = 0;
            for (var i = 0; i < image.Rgb.Length; i += 3) red += image.Rgb[i];
            return red / 255.0 / (image.Width * image.Height);
        }
    }

    private sealed class Inline(Action<BenchmarkProgress> report) : IProgress<BenchmarkProgress>
    {
        public void Report(BenchmarkProgress value) => report(value);
    }
}
