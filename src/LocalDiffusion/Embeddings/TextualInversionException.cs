namespace LocalDiffusion.Embeddings;

/// <summary>
/// A textual-inversion embedding that cannot be read or used with this model (an unknown format, a damaged file, a width
/// the text encoder does not have): the message names the file, the key (when one is concerned) and, for a damaged file,
/// the byte offset of the problem.
/// </summary>
public sealed class TextualInversionException : IOException, LocalDiffusion.Errors.ILocalDiffusionError
{
    /// <summary>Creates the error; the message is composed from the parts.</summary>
    public TextualInversionException(string filePath, string? key, long? offset, string problem, Exception? inner = null)
        : base($"{filePath}{(key is null ? "" : $", key \"{key}\"")}{(offset is { } o ? $", byte offset {o}" : "")}: {problem}", inner)
    {
        FilePath = filePath;
        Key = key;
        Offset = offset;
    }

    /// <summary>The embedding file.</summary>
    public string FilePath { get; }

    /// <summary>The key (tensor or dict entry) concerned, if any.</summary>
    public string? Key { get; }

    /// <summary>Where in the file (or in the named record of a torch zip) the problem is, if one applies.</summary>
    public long? Offset { get; }

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorKind Kind => LocalDiffusion.Errors.ErrorKind.ModelFormat;

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorCulprit Culprit => new() { File = FilePath, Key = Key };

    /// <inheritdoc/>
    public string Describe(string fieldName) => Message;
}
