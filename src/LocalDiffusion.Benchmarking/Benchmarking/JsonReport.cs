using System.Text.Json;
using System.Text.Json.Serialization;

namespace LocalDiffusion.Benchmarking;

/// <summary>The whole benchmark report as JSON (camelCase; an identical output's PSNR is the string "Infinity").</summary>
public static class JsonReport
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>The JSON text.</summary>
    public static string Format(SchedulerBenchmarkReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        return JsonSerializer.Serialize(report, Options);
    }
}
