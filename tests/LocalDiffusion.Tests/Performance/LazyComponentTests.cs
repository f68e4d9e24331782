using LocalDiffusion.Onnx;

namespace LocalDiffusion.Tests.Performance;

public class LazyComponentTests
{
    private static SessionFactory Cpu() => new(new ExecutionDevice(ExecutionProviderKind.Cpu), null, null);

    [Fact]
    public async Task TheVaeEncoderLoadsOnFirstUseOnly()
    {
        var path = Path.Combine(TestModels.PathOf("tiny"), "vae_encoder", "model.onnx");
        using var encoder = new LazyComponent("vae_encoder", path, Cpu());
        Assert.False(encoder.IsLoaded);

        var first = Task.Run(() => encoder.Value);
        var second = Task.Run(() => encoder.Value);
        Assert.Same(await first, await second); // one session, however many ask at once
        Assert.True(encoder.IsLoaded);
        Assert.Contains("sample", encoder.Value.Inputs.Keys);
    }

    [Fact]
    public void AMissingModelFailsAtFirstUseNamingTheFile()
    {
        using var missing = new LazyComponent("vae_encoder", "/nonexistent/vae_encoder/model.onnx", Cpu());
        var error = Assert.Throws<ModelLoadException>(() => missing.Value);
        Assert.Contains("/nonexistent/vae_encoder/model.onnx", error.Message);
    }
}
