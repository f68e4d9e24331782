namespace LocalDiffusion.Tokenizer;

/// <summary>A tokenizer file that exists but cannot be used: a Git LFS pointer, malformed JSON or merges,
/// a special token missing from the vocabulary.</summary>
public sealed class TokenizerFileException : IOException, LocalDiffusion.Errors.ILocalDiffusionError
{
    /// <summary>Creates the exception for <paramref name="filePath"/>; the message says what was expected.</summary>
    public TokenizerFileException(string filePath, string message, Exception? innerException = null)
        : base(message, innerException) => FilePath = filePath;

    /// <summary>The offending file.</summary>
    public string FilePath { get; }

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorKind Kind => LocalDiffusion.Errors.ErrorKind.ModelFormat;

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorCulprit Culprit => new() { File = FilePath };

    /// <inheritdoc/>
    public string Describe(string fieldName) => Message;
}
