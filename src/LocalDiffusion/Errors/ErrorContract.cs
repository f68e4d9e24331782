namespace LocalDiffusion.Errors;

/// <summary>One row of the contract: an error kind and what the CLI and the HTTP APIs answer for it.</summary>
/// <param name="Kind">The kind.</param>
/// <param name="ExitCode">The CLI's exit code.</param>
/// <param name="HttpStatus">The server's status, on both APIs.</param>
/// <param name="OpenAiType">OpenAI's error <c>type</c>.</param>
/// <param name="Code">OpenAI's error <c>code</c>, or null.</param>
/// <param name="A1111Error">The <c>error</c> of A1111's error body (the Python exception type AUTOMATIC1111 would name).</param>
public sealed record ErrorMapping(ErrorKind Kind, int ExitCode, int HttpStatus, string OpenAiType, string? Code, string A1111Error);

/// <summary>
/// The one table from errors to answers: the CLI's exit codes and the server's statuses and bodies (OpenAI's and
/// AUTOMATIC1111's shapes) all come from it, and the README's error table is checked against it by a test. An
/// exception's kind is its own (<see cref="ILocalDiffusionError.Kind"/>); the few .NET types the engine lets through
/// (cancellation, file errors) are classified here.
/// </summary>
public static class ErrorContract
{
    /// <summary>Every kind's answers.</summary>
    public static IReadOnlyList<ErrorMapping> Table { get; } =
    [
        // A1111 answers a refused request with FastAPI's HTTPException and a failure with the Python exception's name.
        new(ErrorKind.InvalidRequest, 1, 400, "invalid_request_error", "invalid_value", "HTTPException"),
        new(ErrorKind.ModelIncompatible, 1, 400, "invalid_request_error", "model_incompatible", "HTTPException"),
        new(ErrorKind.ModelFormat, 2, 500, "server_error", "model_load_failed", "RuntimeError"),
        new(ErrorKind.ProviderUnavailable, 2, 500, "server_error", "provider_unavailable", "RuntimeError"),
        new(ErrorKind.ResourceLimit, 5, 500, "server_error", "insufficient_memory", "OutOfMemoryError"),
        new(ErrorKind.Numerics, 3, 500, "server_error", "numerical_failure", "NansException"),
        new(ErrorKind.Io, 4, 500, "server_error", "io_error", "OSError"),
        new(ErrorKind.Cancelled, 130, 499, "invalid_request_error", "cancelled", "HTTPException"),
        new(ErrorKind.Internal, 70, 500, "server_error", null, "RuntimeError"),
    ];

    /// <summary>The row of <paramref name="kind"/>.</summary>
    public static ErrorMapping For(ErrorKind kind) => Table.First(m => m.Kind == kind);

    /// <summary>The kind of <paramref name="e"/>: its own if it is one of the engine's errors, else from its .NET type.</summary>
    public static ErrorKind KindOf(Exception e) => e switch
    {
        ILocalDiffusionError typed => typed.Kind,
        OperationCanceledException => ErrorKind.Cancelled,
        // A library caller's own argument (a null, a value only code can pass); the message says which.
        ArgumentException => ErrorKind.InvalidRequest,
        // An input file the user named (an init image, a mask, latents) that is missing or unreadable.
        FileNotFoundException or DirectoryNotFoundException or InvalidDataException => ErrorKind.InvalidRequest,
        IOException or UnauthorizedAccessException => ErrorKind.Io,
        _ => ErrorKind.Internal,
    };
}
