using LocalDiffusion.Errors;

namespace LocalDiffusion;

/// <summary>The execution providers a user can ask for.</summary>
public enum ExecutionProviderKind
{
    /// <summary>Try the GPU providers this runtime has, in order, then fall back to the CPU.</summary>
    Auto,
    /// <summary>ONNX Runtime's default CPU provider.</summary>
    Cpu,
    /// <summary>NVIDIA CUDA (package Microsoft.ML.OnnxRuntime.Gpu).</summary>
    Cuda,
    /// <summary>NVIDIA TensorRT (package Microsoft.ML.OnnxRuntime.Gpu, plus TensorRT libraries).</summary>
    TensorRT,
    /// <summary>DirectML on Windows (package Microsoft.ML.OnnxRuntime.DirectML).</summary>
    DirectML,
    /// <summary>Apple CoreML (the macOS/iOS builds of Microsoft.ML.OnnxRuntime).</summary>
    CoreML,
}

/// <summary>A parsed <c>--device</c> value: <c>auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml</c>.</summary>
/// <param name="Kind">Which provider.</param>
/// <param name="DeviceId">The GPU ordinal for providers that take one.</param>
public sealed record ExecutionDevice(ExecutionProviderKind Kind, int DeviceId = 0)
{
    /// <summary>Parses a device string; throws <see cref="InvalidRequestException"/> naming the accepted forms.</summary>
    public static ExecutionDevice Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var text = value.Trim().ToLowerInvariant();
        var colon = text.IndexOf(':');
        var name = colon < 0 ? text : text[..colon];
        var id = 0;
        if (colon >= 0 && (!int.TryParse(text[(colon + 1)..], out id) || id < 0))
            throw new InvalidRequestException("Device", value, "a GPU ordinal after ':'", name => $"{name} '{value}': the part after ':' must be a GPU ordinal such as 0 or 1.");
        ExecutionProviderKind kind = name switch
        {
            "auto" => ExecutionProviderKind.Auto,
            "cpu" => ExecutionProviderKind.Cpu,
            "cuda" or "gpu" => ExecutionProviderKind.Cuda,
            "tensorrt" or "trt" => ExecutionProviderKind.TensorRT,
            "directml" or "dml" => ExecutionProviderKind.DirectML,
            "coreml" => ExecutionProviderKind.CoreML,
            _ => throw new InvalidRequestException("Device", value, "auto, cpu, cuda[:N], tensorrt[:N], directml[:N] or coreml",
                name => $"{name} '{value}' is not known. Use one of: auto, cpu, cuda[:N], tensorrt[:N], directml[:N], coreml."),
        };
        if (colon >= 0 && kind is ExecutionProviderKind.Auto or ExecutionProviderKind.Cpu or ExecutionProviderKind.CoreML)
            throw new InvalidRequestException("Device", value, "no ordinal", field => $"{field} '{value}': '{name}' takes no ordinal.");
        return new ExecutionDevice(kind, id);
    }

    /// <summary>The ONNX Runtime provider name, e.g. <c>CUDAExecutionProvider</c>.</summary>
    public string ProviderName => Kind switch
    {
        ExecutionProviderKind.Cuda => "CUDAExecutionProvider",
        ExecutionProviderKind.TensorRT => "TensorrtExecutionProvider",
        ExecutionProviderKind.DirectML => "DmlExecutionProvider",
        ExecutionProviderKind.CoreML => "CoreMLExecutionProvider",
        _ => "CPUExecutionProvider",
    };

    /// <summary>Which package (and <c>OnnxRuntimeFlavor</c> build switch) provides this provider.</summary>
    public string PackageHint => Kind switch
    {
        ExecutionProviderKind.Cuda or ExecutionProviderKind.TensorRT =>
            "it is in the Microsoft.ML.OnnxRuntime.Gpu package: build with -p:OnnxRuntimeFlavor=Gpu (Linux/Windows, NVIDIA driver + CUDA 12 and cuDNN 9 installed)",
        ExecutionProviderKind.DirectML =>
            "it is in the Microsoft.ML.OnnxRuntime.DirectML package: build with -p:OnnxRuntimeFlavor=DirectML (Windows only)",
        ExecutionProviderKind.CoreML => "it is in the macOS/iOS builds of Microsoft.ML.OnnxRuntime (run on a Mac)",
        _ => "it is in every ONNX Runtime package",
    };

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        ExecutionProviderKind.Cuda or ExecutionProviderKind.TensorRT or ExecutionProviderKind.DirectML =>
            $"{Kind.ToString().ToLowerInvariant()}:{DeviceId}",
        _ => Kind.ToString().ToLowerInvariant(),
    };
}
