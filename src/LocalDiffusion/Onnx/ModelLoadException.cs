namespace LocalDiffusion.Onnx;

/// <summary>A model folder or one of its files is missing, unreadable or not what a Stable Diffusion pipeline needs.</summary>
public sealed class ModelLoadException : Exception, LocalDiffusion.Errors.ILocalDiffusionError
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public ModelLoadException(string path, string message, Exception? inner = null)
        : base($"{path}: {message}", inner) => FilePath = path;

    /// <summary>The file or folder at fault.</summary>
    public string FilePath { get; }

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorKind Kind => LocalDiffusion.Errors.ErrorKind.ModelFormat;

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorCulprit Culprit => new() { File = FilePath };

    /// <inheritdoc/>
    public string Describe(string fieldName) => Message;
}
