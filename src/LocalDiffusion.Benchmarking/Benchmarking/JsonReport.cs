using System.Text.Json;
using System.Text.Json.Serialization;

namespace LocalDiffusion.Benchmarking;

/// <summary>The whole benchmark report as JSON (camelCase; an identical output's PSNR is the string "Infinity").</summary>
public static class JsonReport
{
    /// <summary>Every benchmark report's JSON: indented, camelCase, NaN and infinities as strings.</summary>
    internal static readonly JsonSerializerOptions ReportOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    // The scheduler report leaves out what a run did not measure.
    private static readonly JsonSerializerOptions Options = new(ReportOptions) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>The JSON text.</summary>
    public static string Format(SchedulerBenchmarkReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        return JsonSerializer.Serialize(report, Options);
    }
}
