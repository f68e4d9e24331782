using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LocalDiffusion.Server.Hosting;

/// <summary><c>/health</c> (readiness) and the Prometheus text of the server's meter.</summary>
internal static class StatusEndpoints
{
    public static void MapHealth(IEndpointRouteBuilder app, ServerContext server, string pattern) =>
        app.MapGet(pattern, () => Health(server));

    public static void MapMetrics(IEndpointRouteBuilder app, ServerContext server, string pattern) =>
        app.MapGet(pattern, () => Results.Text(server.Exporter.Render(), "text/plain; version=0.0.4; charset=utf-8"));

    // Ready (200) while at least one model can generate, as a load balancer's or Kubernetes' readiness check wants it;
    // 503 while every model is still loading or failed, with the same body saying which.
    private static IResult Health(ServerContext server)
    {
        var catalog = server.Catalog;
        var queue = server.Queue;
        var ready = catalog.All.Any(m => m.IsReady);
        var status = ready ? "ok" : catalog.All.Any(m => m.State == "loading") ? "loading" : "unavailable";
        return Results.Json(new
        {
            status,
            models = catalog.All.Select(m => new { id = m.Id, state = m.State }),
            queue = new { waiting = queue.Waiting, running = queue.Running, capacity = queue.Capacity, concurrency = queue.Concurrency, max_batch = queue.MaxBatchImages },
        }, statusCode: ready ? 200 : 503);
    }
}
