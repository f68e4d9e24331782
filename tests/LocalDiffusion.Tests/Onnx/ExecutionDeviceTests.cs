using LocalDiffusion.Onnx;

namespace LocalDiffusion.Tests.Onnx;

public class ExecutionDeviceTests
{
    [Theory]
    [InlineData("auto", ExecutionProviderKind.Auto, 0)]
    [InlineData("CPU", ExecutionProviderKind.Cpu, 0)]
    [InlineData("cuda", ExecutionProviderKind.Cuda, 0)]
    [InlineData("cuda:1", ExecutionProviderKind.Cuda, 1)]
    [InlineData("tensorrt:2", ExecutionProviderKind.TensorRT, 2)]
    [InlineData("directml", ExecutionProviderKind.DirectML, 0)]
    [InlineData("coreml", ExecutionProviderKind.CoreML, 0)]
    public void ParsesTheDocumentedForms(string text, ExecutionProviderKind kind, int id) =>
        Assert.Equal(new ExecutionDevice(kind, id), ExecutionDevice.Parse(text));

    [Theory]
    [InlineData("vulkan", "not known")]
    [InlineData("cuda:x", "GPU ordinal")]
    [InlineData("cpu:1", "takes no ordinal")]
    public void RejectsOtherForms(string text, string message)
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => ExecutionDevice.Parse(text));
        Assert.Contains(message, e.Message);
    }
}
