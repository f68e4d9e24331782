using LocalDiffusion.Errors;
using Microsoft.AspNetCore.Http;
using LocalDiffusion.Server.Http;
using Microsoft.Extensions.Logging;

namespace LocalDiffusion.Server.Errors;

/// <summary>
/// Turns exceptions into errors in the shape of the API the request was on (OpenAI's, or AUTOMATIC1111's on /sdapi):
/// <see cref="ApiException"/> as it says, the engine's errors by the contract's table (a request error as 400 naming the
/// field as that API calls it, a NaN as a 500 that says where it began), 413 for bodies over the limit, nothing at all
/// when the client went away, and anything else as a 500 that is logged with the request id and never shows a stack trace.
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
            var error = Map(e, context.TraceIdentifier, ApiOf(context));
            if (error.Status >= 500 && error.Code != "model_loading")
                logger.LogError(e, "Request {RequestId} failed: {Message}", context.TraceIdentifier, e.Message);
            await ErrorWriter.WriteAsync(context, error);
        }
    }

    /// <summary>The answer for <paramref name="e"/> on a route of <paramref name="api"/> (its field names; A1111's or OpenAI's body).</summary>
    public static ApiException Map(Exception e, string requestId, FrontEnd api = FrontEnd.OpenAi) => e switch
    {
        ApiException known => known,
        Generation.GenerationInterruptedException => new ApiException(409,
            "The generation was interrupted (POST /sdapi/v1/interrupt) before it finished.", "invalid_request_error", null, "interrupted"),
        BadHttpRequestException { StatusCode: 413 } => new ApiException(413, e.Message, "invalid_request_error", null, "request_too_large"),
        BadHttpRequestException bad => new ApiException(bad.StatusCode, bad.Message, "invalid_request_error"),
        _ => FromContract(e, requestId, api),
    };

    /// <summary>Which API a request is on: A1111's routes are fixed at /sdapi; everything else answers as OpenAI does.</summary>
    public static FrontEnd ApiOf(HttpContext context) =>
        context.Request.Path.StartsWithSegments("/sdapi") ? FrontEnd.Automatic1111 : FrontEnd.OpenAi;

    // The status, type, code and A1111 error name are the contract's (LocalDiffusion.Errors.ErrorContract), shared with the
    // CLI's exit codes; a request error names its field as the client sent it (RequestFields), not as the engine calls it.
    private static ApiException FromContract(Exception e, string requestId, FrontEnd api)
    {
        var kind = ErrorContract.KindOf(e);
        var row = ErrorContract.For(kind);
        var field = (e as ILocalDiffusionError)?.Culprit.Field ?? (e as ArgumentException)?.ParamName;
        var (message, param) = kind switch
        {
            ErrorKind.InvalidRequest or ErrorKind.ModelIncompatible =>
                (RequestFields.MessageFor(e, api), field is null ? null : RequestFields.NameIn(field, api)),
            ErrorKind.Numerics => ($"The generation failed numerically: {e.Message} (request id {requestId}).", null),
            ErrorKind.ModelFormat => ($"The model could not be loaded: {e.Message} (request id {requestId}).", "model"),
            ErrorKind.ProviderUnavailable => ($"The execution provider is not available: {e.Message} (request id {requestId}).", null),
            ErrorKind.ResourceLimit => ($"The server cannot hold the model: {e.Message} (request id {requestId}).", "model"),
            ErrorKind.Cancelled => ("The generation was cancelled.", null),
            _ => ($"The server had an internal error while processing the request (request id {requestId}); it has been logged.", (string?)null),
        };
        return new ApiException(row.HttpStatus, message, row.OpenAiType, param, row.Code) { A1111Error = row.A1111Error };
    }
}
