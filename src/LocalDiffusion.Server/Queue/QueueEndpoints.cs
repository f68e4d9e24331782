using LocalDiffusion.Server.Errors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LocalDiffusion.Server.Queue;

/// <summary>
/// An extension for clients that queue several generations (the web UI does): <c>GET /v1/queue</c> lists the running
/// and waiting jobs by the ids clients gave them (<see cref="JobId.Header"/>), and <c>DELETE /v1/queue/{id}</c> cancels one.
/// </summary>
internal static class QueueEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ServerContext server, string prefix = "/v1")
    {
        app.MapGet($"{prefix}/queue", () => Results.Json(List(server)));
        app.MapDelete($"{prefix}/queue/{{id}}", (string id) =>
        {
            var job = server.Generator.Jobs.Find(id)
                ?? throw new ApiException(404, $"No waiting or running job has the id '{id}' (it may have finished already).", "invalid_request_error", "id", "job_not_found");
            job.Cancel();
            return Results.Json(new { id = job.Id, cancelled = true });
        });
    }

    private static object List(ServerContext server)
    {
        var jobs = server.Generator.Jobs;
        var running = server.Active.Snapshot().Select(g => new
        {
            id = g.RequestId,
            model = g.Model,
            kind = g.Kind,
            // Before denoising starts (prompt encoding reports no total yet) the request's own step count stands.
            step = g.Progress?.Step ?? 0,
            total_steps = g.Progress is { TotalSteps: > 0 } progress ? progress.TotalSteps : g.Steps,
        });
        // Positions count every waiting request, 1 = next to run; a job that starts between the two looks is skipped.
        var waiting = server.Queue.WaitingJobIds()
            .Select((id, index) => (Job: id is null ? null : jobs.Find(id), Position: index + 1))
            .Where(w => w.Job is not null)
            .Select(w => new { id = w.Job!.Id, position = w.Position, model = w.Job.Model, kind = w.Job.Kind });
        return new { running, waiting };
    }
}
