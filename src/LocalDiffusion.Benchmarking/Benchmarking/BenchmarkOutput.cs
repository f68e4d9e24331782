using System.Text;

namespace LocalDiffusion.Benchmarking;

/// <summary>Writes a benchmark's files into a folder; existing files are never replaced unless asked.</summary>
public static class BenchmarkOutput
{
    /// <summary>The Markdown table.</summary>
    public const string MarkdownFile = "schedulers.md";

    /// <summary>The rows as CSV.</summary>
    public const string CsvFile = "schedulers.csv";

    /// <summary>The whole report as JSON.</summary>
    public const string JsonFile = "schedulers.json";

    /// <summary>Latent RMSE vs UNet evaluations.</summary>
    public const string LatentPlotFile = "convergence-latents.png";

    /// <summary>Image RMSE vs UNet evaluations.</summary>
    public const string ImagePlotFile = "convergence-images.png";

    /// <summary>Schedulers × step counts picture grid.</summary>
    public const string GridFile = "grid.png";

    /// <summary>Every file <see cref="Write"/> creates, in order.</summary>
    public static IReadOnlyList<string> FileNames { get; } = [MarkdownFile, CsvFile, JsonFile, LatentPlotFile, ImagePlotFile, GridFile];

    /// <summary>Throws when a file <see cref="Write"/> would create already exists and <paramref name="overwrite"/> is false; call it before a long run.</summary>
    /// <exception cref="IOException">Names the existing file.</exception>
    public static void EnsureWritable(string directory, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (overwrite) return;
        foreach (var name in FileNames)
        {
            var path = Path.Combine(directory, name);
            if (File.Exists(path))
                throw new IOException($"{path} already exists; choose another output folder or pass --overwrite.");
        }
    }

    /// <summary>Writes the report's files into <paramref name="directory"/> (created if needed) and returns their paths.</summary>
    /// <exception cref="IOException">A file exists and <paramref name="overwrite"/> is false (nothing is written then).</exception>
    public static IReadOnlyList<string> Write(SchedulerBenchmarkReport report, string directory, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(report);
        EnsureWritable(directory, overwrite);
        Directory.CreateDirectory(directory);
        var utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);
        var contents = new (string Name, byte[] Bytes)[]
        {
            (MarkdownFile, utf8.GetBytes(MarkdownReport.Format(report))),
            (CsvFile, utf8.GetBytes(CsvReport.Format(report))),
            (JsonFile, utf8.GetBytes(JsonReport.Format(report))),
            (LatentPlotFile, ConvergencePlot.Render(report, ConvergenceMetric.LatentRmse)),
            (ImagePlotFile, ConvergencePlot.Render(report, ConvergenceMetric.ImageRmse)),
            (GridFile, ImageGrid.Render(report)),
        };
        var paths = new List<string>();
        foreach (var (name, bytes) in contents)
        {
            var path = Path.Combine(directory, name);
            using (var stream = new FileStream(path, overwrite ? FileMode.Create : FileMode.CreateNew, FileAccess.Write))
                stream.Write(bytes);
            paths.Add(path);
        }
        return paths;
    }
}
