namespace LocalDiffusion.Adapters;

/// <summary>
/// A LoRA that cannot be applied to this model (a key in an unknown format, a module the model lacks, a shape that does
/// not fit): the message names the LoRA file and the key.
/// </summary>
public sealed class LoraException : Exception, LocalDiffusion.Errors.ILocalDiffusionError
{
    /// <summary>Creates the error; the message is composed from the parts.</summary>
    public LoraException(string filePath, string? key, string problem, Exception? inner = null)
        : base(key is null ? $"{filePath}: {problem}" : $"{filePath}, key \"{key}\": {problem}", inner)
    {
        FilePath = filePath;
        Key = key;
    }

    /// <summary>The LoRA file.</summary>
    public string FilePath { get; }

    /// <summary>The key concerned, if any.</summary>
    public string? Key { get; }

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorKind Kind => LocalDiffusion.Errors.ErrorKind.ModelFormat;

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorCulprit Culprit => new() { File = FilePath, Key = Key };

    /// <inheritdoc/>
    public string Describe(string fieldName) => Message;
}
