using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Errors;

/// <summary>Writes <see cref="ApiException"/>s as OpenAI-shaped JSON error bodies.</summary>
internal static class ErrorWriter
{
    public static Task WriteAsync(HttpContext context, ApiException error)
    {
        var response = context.Response;
        response.StatusCode = error.Status;
        if (error.RetryAfterSeconds is { } seconds) response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        response.ContentType = "application/json";
        return response.WriteAsync(Body(error), context.RequestAborted);
    }

    /// <summary>The exact body: <c>{"error":{"message":…,"type":…,"param":…,"code":…}}</c>.</summary>
    public static string Body(ApiException error) => JsonSerializer.Serialize(new
    {
        error = new { message = error.Message, type = error.Type, param = error.Param, code = error.Code },
    }, Json);

    /// <summary>
    /// The server's JSON settings: plain quotes and apostrophes instead of \u0027 escapes (bodies are application/json,
    /// never inlined into HTML), as OpenAI's own responses read.
    /// </summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
