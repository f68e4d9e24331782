using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Errors;

/// <summary>Writes <see cref="ApiException"/>s as JSON error bodies: OpenAI's shape, or AUTOMATIC1111's on its routes.</summary>
internal static class ErrorWriter
{
    public static Task WriteAsync(HttpContext context, ApiException error)
    {
        var response = context.Response;
        response.StatusCode = error.Status;
        if (error.RetryAfterSeconds is { } seconds) response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        response.ContentType = "application/json";
        var body = ErrorMiddleware.ApiOf(context) == LocalDiffusion.Errors.FrontEnd.Automatic1111 ? A1111Body(error) : Body(error);
        return response.WriteAsync(body, context.RequestAborted);
    }

    /// <summary>
    /// AUTOMATIC1111's body, as its API middleware writes one (<c>error</c>: the exception's type, <c>detail</c>, <c>body</c>,
    /// <c>errors</c>), with the field at fault (<c>field</c>) and OpenAI's <c>code</c> added so a client need not read the text.
    /// </summary>
    public static string A1111Body(ApiException error) => JsonSerializer.Serialize(new
    {
        error = error.A1111Error,
        detail = error.Message,
        body = "",
        errors = $"{error.Status}: {error.Message}",
        field = error.Param,
        code = error.Code,
    }, Json);

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
