using System.Text;

namespace LocalDiffusion.Tests.Onnx;

/// <summary>
/// models/test/tiny-int8 is models/test/tiny after tools/quantize_unet.py: its UNet's MatMul weights stored as int8 with a
/// scale per output column, run by ONNX Runtime's com.microsoft.DynamicQuantizeMatMul. An opt-in with a quality cost,
/// measured here on the test model and in benchmarks/README.md on the shapes model and the SD-1.5-size export.
/// </summary>
public class QuantizedUnetTests
{
    private static bool HasOp(string file, string op) =>
        File.ReadAllBytes(file).AsSpan().IndexOf(Encoding.ASCII.GetBytes($"\u0022{(char)op.Length}{op}")) >= 0;

    private static double Psnr(byte[] a, byte[] b)
    {
        var mse = a.Zip(b).Average(p => (double)(p.First - p.Second) * (p.First - p.Second));
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse);
    }

    [Fact]
    public void TheUnetsMatMulsAreQuantised()
    {
        var quantised = Path.Combine(TestModels.PathOf("tiny-int8"), "unet", "model.onnx");
        Assert.True(HasOp(quantised, "DynamicQuantizeMatMul"));
        Assert.False(HasOp(Path.Combine(TestModels.PathOf("tiny"), "unet", "model.onnx"), "DynamicQuantizeMatMul"));
    }

    [Fact]
    public async Task PicturesStayCloseToTheFloatModels()
    {
        // tiny's layers are 32 wide, so one int8 step per column is coarse: measured 33 dB after 4 PNDM steps (the
        // shapes model: 43.6 dB mean over its 45 eval cases; the SD-1.5-size export: 49.7 dB). Quantisation that
        // scaled the wrong axis or lost the sign gives noise, far below 25 dB; a different seed gives about 10 dB.
        var request = TestModels.Request() with { Steps = 6 };
        var token = TestContext.Current.CancellationToken;
        var plain = await TestModels.Pipeline("tiny").GenerateAsync(request, cancellationToken: token);
        var quantised = await TestModels.Pipeline("tiny-int8").GenerateAsync(request, cancellationToken: token);
        var otherSeed = await TestModels.Pipeline("tiny").GenerateAsync(request with { Seed = 7 }, cancellationToken: token);
        var psnr = Psnr(plain.Images[0].Rgb, quantised.Images[0].Rgb);
        Assert.InRange(psnr, 25, 60); // not identical: the weights really are int8
        Assert.True(Psnr(plain.Images[0].Rgb, otherSeed.Images[0].Rgb) < psnr - 10);
    }
}
