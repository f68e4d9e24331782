using LocalDiffusion.Adapters;
using LocalDiffusion.Onnx;
using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Errors;

/// <summary>Whose fault an error is and what kind it is: what every front-end maps to its own answer.</summary>
public enum ErrorKind
{
    /// <summary>A request value (or an input file the user named) cannot work; nothing was done.</summary>
    InvalidRequest,

    /// <summary>The model folder: a missing, broken or unsupported file, a config value out of range, a LoRA for another model.</summary>
    ModelFormat,

    /// <summary>The execution provider asked for is not available (its package or drivers are missing).</summary>
    ProviderUnavailable,

    /// <summary>NaN or infinity appeared during a generation.</summary>
    Numerics,

    /// <summary>Reading or writing a file failed while working (disk full, permissions changed).</summary>
    Io,

    /// <summary>The caller cancelled.</summary>
    Cancelled,

    /// <summary>Anything else: a bug.</summary>
    Internal,
}

/// <summary>One row of the contract: an error kind and what the CLI and the HTTP server answer for it.</summary>
/// <param name="Kind">The kind.</param>
/// <param name="ExitCode">The CLI's exit code.</param>
/// <param name="HttpStatus">The server's status (OpenAI's error shape).</param>
/// <param name="OpenAiType">OpenAI's error <c>type</c>.</param>
/// <param name="Code">OpenAI's error <c>code</c>, or null.</param>
public sealed record ErrorMapping(ErrorKind Kind, int ExitCode, int HttpStatus, string OpenAiType, string? Code);

/// <summary>
/// The one table from errors to answers: the CLI's exit codes and the server's statuses both come from it, and the
/// README's error table is checked against it by a test. An exception's kind is decided here too, from its type.
/// </summary>
public static class ErrorContract
{
    /// <summary>Every kind's answers.</summary>
    public static IReadOnlyList<ErrorMapping> Table { get; } =
    [
        new(ErrorKind.InvalidRequest, 1, 400, "invalid_request_error", "invalid_value"),
        new(ErrorKind.ModelFormat, 2, 500, "server_error", "model_load_failed"),
        new(ErrorKind.ProviderUnavailable, 2, 500, "server_error", "provider_unavailable"),
        new(ErrorKind.Numerics, 3, 500, "server_error", "numerical_failure"),
        new(ErrorKind.Io, 4, 500, "server_error", "io_error"),
        new(ErrorKind.Cancelled, 130, 499, "invalid_request_error", "cancelled"),
        new(ErrorKind.Internal, 70, 500, "server_error", null),
    ];

    /// <summary>The row of <paramref name="kind"/>.</summary>
    public static ErrorMapping For(ErrorKind kind) => Table.First(m => m.Kind == kind);

    /// <summary>The kind of <paramref name="e"/>, from its type (the most specific first: some model errors are IOExceptions).</summary>
    public static ErrorKind KindOf(Exception e) => e switch
    {
        OperationCanceledException => ErrorKind.Cancelled,
        ArgumentException => ErrorKind.InvalidRequest,
        ModelLoadException or TokenizerFileException or LoraException or SafetensorsException or Embeddings.TextualInversionException => ErrorKind.ModelFormat,
        ExecutionProviderUnavailableException => ErrorKind.ProviderUnavailable,
        GenerationNumericsException => ErrorKind.Numerics,
        // An input file the user named (an init image, a mask, latents) that is missing or unreadable.
        FileNotFoundException or DirectoryNotFoundException or InvalidDataException => ErrorKind.InvalidRequest,
        IOException or UnauthorizedAccessException => ErrorKind.Io,
        _ => ErrorKind.Internal,
    };
}
