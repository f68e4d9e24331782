using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Errors;

/// <summary>
/// Gives routing's bare answers an OpenAI-shaped body: 404 for a path no route serves (and a UI file that does not exist),
/// 405 for a known path asked with another method (routing sets the <c>Allow</c> header, which the message repeats).
/// HEAD is answered wherever GET is: it runs as GET with the body thrown away, as HTTP defines it.
/// </summary>
internal sealed class StatusCodeErrors(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        var head = HttpMethods.IsHead(request.Method);
        var body = context.Response.Body;
        if (head)
        {
            request.Method = HttpMethods.Get;
            context.Response.Body = Stream.Null;
        }
        try
        {
            await next(context);
            var response = context.Response;
            if (response.HasStarted || response.ContentType is not null || response.StatusCode is not (404 or 405)) return;
            var path = request.Path.Value;
            var error = response.StatusCode == 404
                ? new ApiException(404, $"No route {path} on this server: the OpenAI API is under /v1, AUTOMATIC1111's under /sdapi/v1, the web UI at /.",
                    "invalid_request_error", null, "not_found")
                : new ApiException(405, $"{(head ? "HEAD" : request.Method)} is not allowed on {path}; allowed: {response.Headers.Allow}.",
                    "invalid_request_error", null, "method_not_allowed");
            await ErrorWriter.WriteAsync(context, error);
        }
        finally
        {
            if (head)
            {
                request.Method = HttpMethods.Head;
                context.Response.Body = body;
            }
        }
    }
}
