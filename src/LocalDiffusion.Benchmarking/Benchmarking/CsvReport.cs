using System.Text;

namespace LocalDiffusion.Benchmarking;

/// <summary>The benchmark rows as CSV (RFC 4180, invariant culture, one header line).</summary>
public static class CsvReport
{
    /// <summary>The CSV text.</summary>
    public static string Format(SchedulerBenchmarkReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var columns = ReportColumns.For(report);
        var text = new StringBuilder();
        text.AppendLine(string.Join(",", columns.Select(c => c.CsvName)));
        foreach (var row in report.Rows)
            text.AppendLine(string.Join(",", columns.Select(c => Escape(c.Cell(row)))));
        return text.ToString();
    }

    private static string Escape(string cell) =>
        cell.AsSpan().IndexOfAny(",\"\r\n") < 0 ? cell : "\"" + cell.Replace("\"", "\"\"") + "\"";
}
