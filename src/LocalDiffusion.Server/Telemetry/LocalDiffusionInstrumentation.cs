using LocalDiffusion.Pipeline;
using LocalDiffusion;
using LocalDiffusion.Server.Metrics;
using LocalDiffusion.Server.Telemetry;
using OpenTelemetry.Metrics;

// OpenTelemetry's convention: instrumentation extensions live in the builder's namespace.
namespace OpenTelemetry.Trace;

/// <summary>Turns on LocalDiffusion's traces and metrics in an OpenTelemetry provider.</summary>
public static class LocalDiffusionInstrumentation
{
    /// <summary>
    /// The engine's spans (<c>LocalDiffusion</c>: generate → encode_prompt, denoise with a <c>step</c> event per denoiser
    /// evaluation, decode) and the server's (<c>LocalDiffusion.Server</c>: queue_wait). Add ASP.NET Core's request spans
    /// with <c>AddSource("Microsoft.AspNetCore")</c> or OpenTelemetry.Instrumentation.AspNetCore.
    /// </summary>
    /// <param name="builder">The tracer provider's builder.</param>
    public static TracerProviderBuilder AddLocalDiffusionInstrumentation(this TracerProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddSource(LocalDiffusionTelemetry.ActivitySourceName, ServerTracing.Name);
    }

    /// <summary>The server's meter (<c>LocalDiffusion.Server</c>): queue gauges, generations, images, durations, batch sizes, the same instruments /metrics shows.</summary>
    /// <param name="builder">The meter provider's builder.</param>
    public static MeterProviderBuilder AddLocalDiffusionInstrumentation(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter(ServerMetrics.MeterName);
    }
}
