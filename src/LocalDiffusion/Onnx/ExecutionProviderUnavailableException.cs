namespace LocalDiffusion.Onnx;

/// <summary>The requested execution provider is not in the installed ONNX Runtime build or cannot start.</summary>
public sealed class ExecutionProviderUnavailableException : Exception, LocalDiffusion.Errors.ILocalDiffusionError
{
    /// <summary>Creates the exception for <paramref name="device"/>.</summary>
    public ExecutionProviderUnavailableException(ExecutionDevice device, string reason, Exception? inner = null)
        : base($"Execution provider '{device}' ({device.ProviderName}) is unavailable: {reason}. {Capitalize(device.PackageHint)}.", inner)
        => Device = device;

    /// <summary>The device that was asked for.</summary>
    public ExecutionDevice Device { get; }

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorKind Kind => LocalDiffusion.Errors.ErrorKind.ProviderUnavailable;

    /// <inheritdoc/>
    public LocalDiffusion.Errors.ErrorCulprit Culprit => new() { Value = Device.ToString() };

    /// <inheritdoc/>
    public string Describe(string fieldName) => Message;
}
