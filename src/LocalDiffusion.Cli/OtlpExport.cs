using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace LocalDiffusion.Cli;

/// <summary>
/// <c>serve --otlp-endpoint URL</c> (or the standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>): the engine's and server's spans,
/// ASP.NET Core's request spans, and the server's metrics, sent by OTLP. The protocol is the exporter's default (gRPC,
/// usually port 4317) unless <c>OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf</c> (port 4318); the other standard
/// <c>OTEL_*</c> variables (headers, service name, …) apply as the exporter reads them.
/// </summary>
internal static class OtlpExport
{
    /// <summary>The providers to dispose on exit (which flushes them), or null when no endpoint is configured.</summary>
    /// <param name="endpoint">The collector; null: <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, else nothing is exported.</param>
    /// <param name="protocol">Overrides <c>OTEL_EXPORTER_OTLP_PROTOCOL</c> (tests).</param>
    public static IDisposable? Start(Uri? endpoint, OtlpExportProtocol? protocol = null)
    {
        if (endpoint is null && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT"))) return null;
        var resource = ResourceBuilder.CreateDefault().AddService("localdiffusion");
        var tracing = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(resource)
            .AddLocalDiffusionInstrumentation()
            .AddSource("Microsoft.AspNetCore")
            .AddOtlpExporter(o => Point(o, endpoint, protocol, "v1/traces"))
            .Build();
        var metrics = Sdk.CreateMeterProviderBuilder()
            .SetResourceBuilder(resource)
            .AddLocalDiffusionInstrumentation()
            .AddMeter("Microsoft.AspNetCore.Hosting")
            .AddOtlpExporter(o => Point(o, endpoint, protocol, "v1/metrics"))
            .Build();
        return new Providers(tracing, metrics);
    }

    // The environment variable is a base URL to which the exporter adds the signal's path for http/protobuf; an endpoint set
    // in code is taken as the full URL. --otlp-endpoint means what the variable means, so the path is added here.
    private static void Point(OtlpExporterOptions options, Uri? endpoint, OtlpExportProtocol? protocol, string signalPath)
    {
        if (protocol is { } chosen) options.Protocol = chosen;
        if (endpoint is null) return;
        options.Endpoint = options.Protocol == OtlpExportProtocol.HttpProtobuf
            ? new Uri(new Uri(endpoint.ToString().TrimEnd('/') + "/"), signalPath)
            : endpoint;
    }

    private sealed class Providers(TracerProvider? tracing, MeterProvider? metrics) : IDisposable
    {
        public void Dispose()
        {
            tracing?.Dispose();
            metrics?.Dispose();
        }
    }
}
