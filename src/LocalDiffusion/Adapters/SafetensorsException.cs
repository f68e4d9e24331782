namespace LocalDiffusion.Adapters;

/// <summary>
/// A <c>.safetensors</c> file (or an adapter stored in one) that cannot be used: the message names the file, the tensor
/// key (when one is concerned) and the byte offset in the file where the problem is.
/// </summary>
public sealed class SafetensorsException : IOException, LocalDiffusion.Errors.ILocalDiffusionError
{
    /// <summary>Creates the error; the message is composed from the parts.</summary>
    public SafetensorsException(string filePath, string? key, long? offset, string problem, Exception? inner = null)
        : base(Compose(filePath, key, offset, problem), inner)
    {
        FilePath = filePath;
        Key = key;
        Offset = offset;
    }

    /// <summary>The file.</summary>
    public string FilePath { get; }

    /// <summary>The tensor key concerned, if any.</summary>
    public string? Key { get; }

    /// <summary>The byte offset in the file where the problem is, if one applies.</summary>
    public long? Offset { get; }

    private static string Compose(string filePath, string? key, long? offset, string problem)
    {
        var where = key is null ? "" : $", key \"{key}\"";
        var at = offset is { } o ? $", byte offset {o}" : "";
        return $"{filePath}{where}{at}: {problem}";
    }

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorKind Kind => LocalDiffusion.Errors.ErrorKind.ModelFormat;

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorCulprit Culprit => new() { File = FilePath, Key = Key };

    /// <inheritdoc/>
    public string Describe(string fieldName) => Message;
}
