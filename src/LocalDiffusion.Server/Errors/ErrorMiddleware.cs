using LocalDiffusion.Onnx;
using Microsoft.AspNetCore.Http;
using LocalDiffusion.Server.Http;
using Microsoft.Extensions.Logging;

namespace LocalDiffusion.Server.Errors;

/// <summary>
/// Turns exceptions into OpenAI-shaped errors: <see cref="ApiException"/> as it says, the engine's
/// <see cref="ArgumentException"/> as 400 naming the field, a NaN during generation (<see cref="GenerationNumericsException"/>) as a
/// 500 that says where it began, 413 for bodies over the limit, nothing at all when the
/// client went away, and anything else as a 500 that is logged with the request id and never shows a stack trace.
/// </summary>
internal sealed class ErrorMiddleware(RequestDelegate next, ILogger<ErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (Exception e) when (context.RequestAborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // The client disconnected; its generation was cancelled with it. Nobody is left to answer.
            context.Items[RequestLog.Outcome] = "client disconnected";
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            var error = Map(e, context.TraceIdentifier);
            if (error.Status >= 500 && error.Code != "model_loading")
                logger.LogError(e, "Request {RequestId} failed: {Message}", context.TraceIdentifier, e.Message);
            await ErrorWriter.WriteAsync(context, error);
        }
    }

    public static ApiException Map(Exception e, string requestId) => e switch
    {
        ApiException api => api,
        Generation.GenerationInterruptedException => new ApiException(409,
            "The generation was interrupted (POST /sdapi/v1/interrupt) before it finished.", "invalid_request_error", null, "interrupted"),
        BadHttpRequestException { StatusCode: 413 } => new ApiException(413, e.Message, "invalid_request_error", null, "request_too_large"),
        BadHttpRequestException bad => new ApiException(bad.StatusCode, bad.Message, "invalid_request_error"),
        ArgumentException arg => ApiException.BadRequest(EngineParameters.ToApiName(arg.ParamName), WithApiName(arg)),
        _ => FromContract(e, requestId),
    };

    // The status, type and code are the contract's (LocalDiffusion.Errors.ErrorContract), shared with the CLI's exit codes.
    private static ApiException FromContract(Exception e, string requestId)
    {
        var kind = LocalDiffusion.Errors.ErrorContract.KindOf(e);
        var row = LocalDiffusion.Errors.ErrorContract.For(kind);
        var message = kind switch
        {
            LocalDiffusion.Errors.ErrorKind.Numerics => $"The generation failed numerically: {e.Message} (request id {requestId}).",
            LocalDiffusion.Errors.ErrorKind.ModelFormat => $"The model could not be loaded: {e.Message} (request id {requestId}).",
            LocalDiffusion.Errors.ErrorKind.ProviderUnavailable => $"The execution provider is not available: {e.Message} (request id {requestId}).",
            _ => $"The server had an internal error while processing the request (request id {requestId}); it has been logged.",
        };
        return new ApiException(row.HttpStatus, message, row.OpenAiType, kind == LocalDiffusion.Errors.ErrorKind.ModelFormat ? "model" : null, row.Code);
    }

    // The engine names its own property ("Steps 1000 with PLMS: …"); a client knows the field it sent ("steps"), as the
    // CLI's ErrorReport says "--steps". (Issue 20's typed errors will carry the field instead of a name in the text.)
    private static string WithApiName(ArgumentException e)
    {
        var message = CleanMessage(e);
        // Only where the field is the property by another spelling (GuidanceScale → guidance_scale), not another concept (Width → size).
        return e.ParamName is { } name && EngineParameters.ToApiName(name) is { } api && api != name
            && api.Replace("_", "", StringComparison.Ordinal).Equals(name, StringComparison.OrdinalIgnoreCase)
            ? System.Text.RegularExpressions.Regex.Replace(message, $@"\b{System.Text.RegularExpressions.Regex.Escape(name)}\b", api)
            : message;
    }

    // ArgumentException.Message appends " (Parameter 'x')", which means nothing to an HTTP client.
    internal static string CleanMessage(ArgumentException e)
    {
        var message = e.Message;
        var suffix = e.ParamName is null ? null : $" (Parameter '{e.ParamName}')";
        if (suffix is not null)
        {
            var at = message.IndexOf(suffix, StringComparison.Ordinal);
            if (at >= 0) message = message.Remove(at, suffix.Length);
        }
        if (e is ArgumentOutOfRangeException { ActualValue: { } value }) message = message.Replace($"{Environment.NewLine}Actual value was {value}.", "");
        return message.Trim();
    }
}
