namespace LocalDiffusion.Server.Errors;

/// <summary>
/// An error answered in OpenAI's shape, <c>{"error": {"message", "type", "param", "code"}}</c>, with its HTTP status.
/// Thrown anywhere in a request; the error middleware writes it.
/// </summary>
internal sealed class ApiException(int status, string message, string type, string? param = null, string? code = null) : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    /// <summary>The <c>error</c> of AUTOMATIC1111's error body: the Python exception A1111 would name (HTTPException for a refusal).</summary>
    public string A1111Error { get; init; } = status >= 500 ? "RuntimeError" : "HTTPException";

    /// <summary>Seconds a client should wait before trying again (429, 503).</summary>
    public int? RetryAfterSeconds { get; init; }

    public static ApiException BadRequest(string? param, string message, string code = "invalid_value") =>
        new(400, message, "invalid_request_error", param, code);

    public static ApiException ModelNotFound(string model, IEnumerable<string> served) =>
        new(404, $"The model '{model}' does not exist on this server; served models: {string.Join(", ", served)}.", "invalid_request_error", "model", "model_not_found");

    public static ApiException QueueFull(int capacity) =>
        new(429, $"The generation queue is full ({capacity} waiting); try again shortly.", "rate_limit_error", null, "queue_full") { RetryAfterSeconds = 2 };

    public static ApiException ModelLoading(string model) =>
        new(503, $"The model '{model}' is still loading; try again shortly.", "server_error", "model", "model_loading") { RetryAfterSeconds = 5 };

    public static ApiException TooLarge(long limit) =>
        new(413, $"The request body is larger than the {limit} bytes this server accepts.", "invalid_request_error", null, "request_too_large");

    public static ApiException Unauthorized() =>
        new(401, "Missing or incorrect API key: send 'Authorization: Bearer <key>' with the key the server was started with.",
            "invalid_request_error", null, "invalid_api_key");
}
