namespace LocalDiffusion.Adapters;

/// <summary>
/// A LoRA that cannot be applied to this model (a key in an unknown format, a module the model lacks, a shape that does
/// not fit): the message names the LoRA file and the key. A file the engine cannot read as a LoRA is a model-format
/// error (HTTP 500, exit 2); a good one made for another model is <see cref="LoraForAnotherModelException"/>.
/// </summary>
public class LoraException : Exception, LocalDiffusion.Errors.ILocalDiffusionError
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
    public virtual LocalDiffusion.Errors.ErrorKind Kind => LocalDiffusion.Errors.ErrorKind.ModelFormat;

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorCulprit Culprit => new() { File = FilePath, Key = Key };

    /// <inheritdoc/>
    public string Describe(string fieldName) => Message;
}

/// <summary>
/// A readable LoRA made for another model (another family, modules or shapes this model lacks): the request's mistake
/// (<see cref="LocalDiffusion.Errors.ErrorKind.ModelIncompatible"/>: HTTP 400, exit 1), not a broken file.
/// </summary>
public sealed class LoraForAnotherModelException(string filePath, string key, string problem) : LoraException(filePath, key, problem)
{
    /// <inheritdoc/>
    public override LocalDiffusion.Errors.ErrorKind Kind => LocalDiffusion.Errors.ErrorKind.ModelIncompatible;
}
