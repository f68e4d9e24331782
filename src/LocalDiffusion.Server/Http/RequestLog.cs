using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LocalDiffusion.Server.Http;

/// <summary>
/// One log line per request: id, method, path, status, time, and for generations the model, size, steps, queue wait
/// and generation time (handlers leave those in <see cref="HttpContext.Items"/>). Generations and errors log at
/// Information, the rest (the UI's files, health checks, progress polls) at Debug so that polling does not drown the log.
/// </summary>
internal sealed class RequestLog(RequestDelegate next, ILogger<RequestLog> logger)
{
    public const string Model = "ld.model";
    public const string Size = "ld.size";
    public const string Steps = "ld.steps";
    public const string QueueWait = "ld.queue_wait";
    public const string GenerationTime = "ld.generation_time";
    public const string Outcome = "ld.outcome";

    public async Task InvokeAsync(HttpContext context)
    {
        var clock = Stopwatch.StartNew();
        context.Response.Headers["x-request-id"] = context.TraceIdentifier;
        try
        {
            await next(context);
        }
        finally
        {
            var items = context.Items;
            var isGeneration = items.ContainsKey(Model);
            var level = isGeneration || context.Response.StatusCode >= 400 || context.RequestAborted.IsCancellationRequested ? LogLevel.Information : LogLevel.Debug;
            if (logger.IsEnabled(level))
            {
                object Item(string key) => items.TryGetValue(key, out var v) && v is not null ? v : "-";
                string Ms(string key) => items.TryGetValue(key, out var v) && v is TimeSpan t
                    ? t.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms" : "-";
                logger.Log(level,
                    "{RequestId} {Method} {Path} {Status} model={Model} size={Size} steps={Steps} queue_wait={QueueWait} generation={GenerationTime} total={Total} ms{Outcome}",
                    context.TraceIdentifier, context.Request.Method, context.Request.Path.Value,
                    // A client that left got no answer: its status is not the 200 the response object still holds.
                    context.RequestAborted.IsCancellationRequested ? "disconnected" : context.Response.StatusCode.ToString(CultureInfo.InvariantCulture),
                    Item(Model), Item(Size), Item(Steps),
                    Ms(QueueWait), Ms(GenerationTime), clock.ElapsedMilliseconds.ToString(CultureInfo.InvariantCulture),
                    items.TryGetValue(Outcome, out var o) ? $" ({o})" : "");
            }
        }
    }
}
