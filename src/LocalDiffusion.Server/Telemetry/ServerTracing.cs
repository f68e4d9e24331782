using LocalDiffusion.Pipeline;
using System.Diagnostics;

namespace LocalDiffusion.Server.Telemetry;

/// <summary>
/// The server's own spans, beside ASP.NET Core's request span and the engine's (<see cref="LocalDiffusionTelemetry"/>):
/// <c>localdiffusion.queue_wait</c>, the time a request waited for a generation slot.
/// </summary>
internal static class ServerTracing
{
    /// <summary>The server's <see cref="ActivitySource"/> and <see cref="System.Diagnostics.Metrics.Meter"/> name.</summary>
    public const string Name = "LocalDiffusion.Server";

    public static ActivitySource Source { get; } = new(Name, typeof(ServerTracing).Assembly.GetName().Version?.ToString());
}
