namespace LocalDiffusion.Tokenizer;

/// <summary>A tokenizer file that exists but cannot be used: a Git LFS pointer, malformed JSON or merges,
/// a special token missing from the vocabulary.</summary>
public sealed class TokenizerFileException : IOException
{
    /// <summary>Creates the exception for <paramref name="filePath"/>; the message says what was expected.</summary>
    public TokenizerFileException(string filePath, string message, Exception? innerException = null)
        : base(message, innerException) => FilePath = filePath;

    /// <summary>The offending file.</summary>
    public string FilePath { get; }
}
