namespace LocalDiffusion.Errors;

/// <summary>
/// The request asks for something this model cannot do: img2img from a folder without a VAE encoder, text-to-image from
/// an SDXL refiner, a ControlNet on SD 3/FLUX. The request field and the model's file are data.
/// </summary>
public sealed class ModelIncompatibleException : ArgumentException, ILocalDiffusionError
{
    private readonly Func<string, string> _message;

    /// <summary>Creates the exception.</summary>
    /// <param name="field">The library's field name that asks for what the model lacks.</param>
    /// <param name="model">The model folder or file that lacks it.</param>
    /// <param name="message">The message, given the name the reader knows the field by.</param>
    public ModelIncompatibleException(string field, string? model, Func<string, string> message)
        : base(null, field)
    {
        _message = message;
        Culprit = new ErrorCulprit { Field = field, File = model };
    }

    /// <inheritdoc/>
    public ErrorKind Kind => ErrorKind.ModelIncompatible;

    /// <inheritdoc/>
    public ErrorCulprit Culprit { get; }

    /// <summary>The message, naming the field as the library does.</summary>
    public override string Message => _message(ParamName ?? "");

    /// <inheritdoc/>
    public string Describe(string fieldName) => _message(fieldName);
}
