using LocalDiffusion.Pipeline;
using System.Text;
using LocalDiffusion.Tests.Schedulers;

namespace LocalDiffusion.Tests.Onnx;

/// <summary>
/// models/test/tiny-fused is models/test/tiny after tools/fuse_attention.py: its UNet's attention block (reshapes,
/// MatMul(q, kᵀ), scale, Softmax, MatMul with v, heads merged) replaced by ONNX Runtime's contrib
/// com.microsoft.MultiHeadAttention. ONNX Runtime runs it on the CPU, and generations agree with the unfused model.
/// </summary>
public class FusedAttentionTests
{
    private static bool Contains(string file, string text) =>
        File.ReadAllBytes(file).AsSpan().IndexOf(Encoding.ASCII.GetBytes(text)) >= 0;

    // A node's op_type in the protobuf: field 4 (tag 0x22), the length, the name; node names may contain the word.
    private static bool HasOp(string file, string op) => Contains(file, $"\u0022{(char)op.Length}{op}");

    [Fact]
    public void TheToolReplacedTheAttentionBlock()
    {
        var fused = Path.Combine(TestModels.PathOf("tiny-fused"), "unet", "model.onnx");
        var plain = Path.Combine(TestModels.PathOf("tiny"), "unet", "model.onnx");
        Assert.True(HasOp(fused, "MultiHeadAttention") && Contains(fused, "com.microsoft"));
        Assert.False(HasOp(fused, "Softmax"));
        Assert.True(HasOp(plain, "Softmax"));
        Assert.False(HasOp(plain, "MultiHeadAttention"));
    }

    [Fact]
    public async Task InfoSaysWhetherTheAttentionIsFused()
    {
        Assert.StartsWith("fused (1 attention nodes)", TestModels.Pipeline("tiny-fused").Info.UnetAttention);
        Assert.StartsWith("fused by the engine when loading (1 of 1 Softmax blocks)", TestModels.Pipeline("tiny").Info.UnetAttention);
        using (var asExported = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cpu", UseModelCache = false, FuseAttention = false }))
            Assert.StartsWith("unfused (1 Softmax blocks;", asExported.Info.UnetAttention);
        var (code, output, error) = await Cli.CliRunner.Run("info", "--model", TestModels.PathOf("tiny-fused"), "--device", "cpu");
        Assert.True(code == 0, error);
        Assert.Contains("fused (1 attention nodes)", output);
    }

    [Theory]
    [InlineData("pndm", 7.5f, 1)]
    [InlineData("euler_a", 7.5f, 2)]
    [InlineData("dpmpp_2m", 1f, 1)]
    public async Task FusedAndUnfusedGenerationsAgree(string scheduler, float guidance, int images)
    {
        var request = TestModels.Request() with { Scheduler = scheduler, GuidanceScale = guidance, ImageCount = images, Steps = 6 };
        var plain = await TestModels.Pipeline("tiny").GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken);
        var fused = await TestModels.Pipeline("tiny-fused").GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken);
        // The fused kernel sums the softmax in another order (online, block by block), so float32 rounding differs:
        // measured 7e-6 of the latents' scale after 4 PNDM steps. Wrong heads, scale or layout are off by O(1).
        var scale = plain.FinalLatents.Max(MathF.Abs);
        Tolerance.AssertClose(plain.FinalLatents, fused.FinalLatents, scheduler, relative: 0, absolute: 1e-4 * scale);
        for (var i = 0; i < images; i++)
            Assert.True(plain.Images[i].Rgb.Zip(fused.Images[i].Rgb).All(p => Math.Abs(p.First - p.Second) <= 1), "pixels differ by more than one level");
    }
}
