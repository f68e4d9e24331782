namespace LocalDiffusion.Errors;

/// <summary>The machine cannot hold the work: the model's weights or the request's tensors do not fit in its memory.</summary>
public sealed class ResourceLimitException : Exception, ILocalDiffusionError
{
    /// <summary>Creates the exception for <paramref name="file"/> (the model at fault), with what was needed and what there is.</summary>
    public ResourceLimitException(string file, string stage, string message) : base(message) =>
        Culprit = new ErrorCulprit { File = file, Stage = stage };

    /// <inheritdoc/>
    public ErrorKind Kind => ErrorKind.ResourceLimit;

    /// <inheritdoc/>
    public ErrorCulprit Culprit { get; }

    /// <inheritdoc/>
    public string Describe(string fieldName) => Message;
}
