using System.Globalization;

namespace LocalDiffusion.Benchmarking;

/// <summary>The table columns shared by the Markdown and CSV reports: header names and invariant-culture cell text.</summary>
internal static class ReportColumns
{
    private const double MiB = 1024 * 1024;
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;

    /// <summary>A column: its Markdown header, its CSV header, and its cell text.</summary>
    public sealed record Column(string Title, string CsvName, Func<SchedulerBenchmarkRow, string> Cell, bool Numeric = true);

    public static IReadOnlyList<Column> For(SchedulerBenchmarkReport report)
    {
        List<Column> columns =
        [
            new("scheduler", "scheduler", r => r.DisplayName, Numeric: false),
            new("id", "id", r => r.SchedulerId, Numeric: false),
            new("steps", "steps", r => r.Steps.ToString(Ci)),
            new("UNet evals", "unet_evaluations", r => r.UnetEvaluations.ToString(Ci)),
            new("wall ms", "wall_ms", r => r.WallMilliseconds.ToString("0.0", Ci)),
            new("ms/step", "ms_per_step", r => r.MillisecondsPerStep.ToString("0.00", Ci)),
            new("peak RSS MiB", "peak_rss_mib", r => (r.PeakWorkingSetBytes / MiB).ToString("0.0", Ci)),
            new("alloc MiB", "allocated_mib", r => (r.AllocatedBytesPerRun / MiB).ToString("0.00", Ci)),
            new("latent RMSE", "latent_rmse", r => Number(r.LatentRmse, "0.00000")),
            new("latent PSNR dB", "latent_psnr_db", r => Number(r.LatentPsnr, "0.00")),
            new("image RMSE", "image_rmse", r => Number(r.ImageRmse, "0.000")),
            new("image PSNR dB", "image_psnr_db", r => Number(r.ImagePsnr, "0.00")),
        ];
        if (report.AdherenceScorer is { } scorer)
            columns.Add(new($"adherence ({scorer})", "adherence", r => r.Adherence is { } a ? a.ToString("0.000", Ci) : ""));
        columns.Add(new("stochastic", "stochastic", r => r.IsStochastic ? "yes" : "no", Numeric: false));
        return columns;
    }

    /// <summary>Invariant text; ∞ for identical outputs' PSNR.</summary>
    public static string Number(double value, string format) =>
        double.IsPositiveInfinity(value) ? "inf" : value.ToString(format, Ci);
}
