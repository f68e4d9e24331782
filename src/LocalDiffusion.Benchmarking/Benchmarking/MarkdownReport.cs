using System.Globalization;
using System.Text;

namespace LocalDiffusion.Benchmarking;

/// <summary>The benchmark as a GitHub-flavoured Markdown table with a short header saying what was measured.</summary>
public static class MarkdownReport
{
    /// <summary>The Markdown text.</summary>
    public static string Format(SchedulerBenchmarkReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var ci = CultureInfo.InvariantCulture;
        var columns = ReportColumns.For(report);
        var seeds = report.Cases.Select(c => c.Seed).Distinct().Count();
        var prompts = report.Cases.Select(c => c.Prompt).Distinct().Count();
        var text = new StringBuilder();
        text.AppendLine(ci, $"Model `{report.Model}` on {report.Device}, {report.Width}x{report.Height}, guidance {report.GuidanceScale.ToString(ci)}; " +
            $"{report.Cases.Count} case(s) ({prompts} prompt(s), {seeds} seed(s)), {report.Repeats} timed run(s) each; " +
            $"errors against `{report.Reference}`.");
        text.AppendLine();
        text.AppendLine("| " + string.Join(" | ", columns.Select(c => c.Title)) + " |");
        text.AppendLine("|" + string.Join("|", columns.Select(c => c.Numeric ? "---:" : "---")) + "|");
        foreach (var row in report.Rows)
            text.AppendLine("| " + string.Join(" | ", columns.Select(c => c.Cell(row).Replace("|", "\\|"))) + " |");
        text.AppendLine();
        text.AppendLine($"Memory: {report.MemoryMeasurement}. Latent PSNR peak: {report.LatentPeak.ToString("0.###", ci)} (reference latents' range); image PSNR peak: 255.");
        return text.ToString();
    }
}
