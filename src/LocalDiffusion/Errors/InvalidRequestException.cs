namespace LocalDiffusion.Errors;

/// <summary>
/// A request or option value that cannot work, refused before any work. It is an <see cref="ArgumentException"/> whose
/// <see cref="ArgumentException.ParamName"/> is the field; the field, its value and what was expected are data
/// (<see cref="Culprit"/>), and the message is written around the field's name so each front-end can use its own
/// (<see cref="Describe"/>: <c>--steps</c> in the CLI, <c>steps</c> on HTTP).
/// </summary>
public sealed class InvalidRequestException : ArgumentException, ILocalDiffusionError
{
    private readonly Func<string, string> _message;

    /// <summary>Creates the exception.</summary>
    /// <param name="field">The library's field name (<c>nameof(GenerationRequest.Steps)</c>).</param>
    /// <param name="value">The value it had.</param>
    /// <param name="expected">What would have worked, or null.</param>
    /// <param name="message">The message, given the name the reader knows the field by.</param>
    /// <param name="inner">The error underneath, if any.</param>
    public InvalidRequestException(string field, object? value, string? expected, Func<string, string> message, Exception? inner = null)
        : base(null, field, inner)
    {
        _message = message;
        Culprit = new ErrorCulprit { Field = field, Value = value, Expected = expected };
    }

    /// <summary>Creates the exception with a message that does not name the field (a check inside the engine).</summary>
    public InvalidRequestException(string field, object? value, string? expected, string message, Exception? inner = null)
        : this(field, value, expected, _ => message, inner)
    {
    }

    /// <summary>A value outside its range: "<c>{field} is {value}; it must be {expected}.</c>"</summary>
    public static InvalidRequestException OutOfRange(string field, object? value, string expected) =>
        new(field, value, expected, name => $"{name} is {Text(value)}; it must be {expected}.");

    /// <inheritdoc/>
    public ErrorKind Kind => ErrorKind.InvalidRequest;

    /// <inheritdoc/>
    public ErrorCulprit Culprit { get; }

    /// <summary>The message, naming the field as the library does (no " (Parameter …)" suffix).</summary>
    public override string Message => _message(ParamName ?? "");

    /// <inheritdoc/>
    public string Describe(string fieldName) => _message(fieldName);

    /// <summary>A value as messages print it: invariant culture, "null" for none.</summary>
    public static string Text(object? value) => value switch
    {
        null => "null",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
