using LocalDiffusion.Errors;
using LocalDiffusion.Pipeline;
using LocalDiffusion.ControlNet;
using LocalDiffusion.Onnx;
using LocalDiffusion.Tests.ImageToImage;

namespace LocalDiffusion.Tests.ControlNet;

/// <summary>
/// ControlNet behaviour beyond the diffusers parity cases, on models/test/tiny-controlnet (tools/build_controlnet_test_model.py):
/// the control image matters, scale 0 is no ControlNet, a loaded model equals a named folder, img2img and inpainting take
/// ControlNets, batches keep each request's own control, and bad requests or mismatched models are refused naming the
/// field or file. Expected values are relations between the engine's own runs (exact where the arithmetic is the same).
/// </summary>
public class ControlNetEngineTests
{
    private static string Folder => TestModels.PathOf("tiny-controlnet");

    private static string Net(int i = 0) => Path.Combine(Folder, i == 0 ? "controlnet" : $"controlnet_{i}");

    private static StableDiffusionPipeline Pipeline => TestModels.Pipeline("tiny-controlnet");

    private static GenerationRequest Request(params ControlNetUnit[] units) => new()
    {
        Prompt = "a red circle on a blue background",
        Seed = 42,
        Steps = 6,
        Width = 96,
        Height = 64,
        Scheduler = "euler",
        ControlNets = units.Length == 0 ? null : units,
    };

    private static ControlNetUnit Unit(string image = "A", float scale = 1f, int net = 0) =>
        new() { ModelPath = Net(net), Image = ControlNetParityTests.Picture(image, 96, 64), Scale = scale };

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static float MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => MathF.Abs(x - y)).Max();

    [Fact]
    public async Task TheControlImageAndScaleChangeTheLatents_AndScaleZeroIsNoControlNet()
    {
        var none = (await Pipeline.GenerateAsync(Request(), cancellationToken: Token)).FinalLatents;
        var a = (await Pipeline.GenerateAsync(Request(Unit("A")), cancellationToken: Token)).FinalLatents;
        var b = (await Pipeline.GenerateAsync(Request(Unit("B")), cancellationToken: Token)).FinalLatents;
        var half = (await Pipeline.GenerateAsync(Request(Unit("A", 0.5f)), cancellationToken: Token)).FinalLatents;
        var zero = (await Pipeline.GenerateAsync(Request(Unit("A", 0f)), cancellationToken: Token)).FinalLatents;
        // Latents here are of order 10 and rounding moves them ~2e-5 (the parity tests); measured: none vs A 2.2, A vs B 0.19, A vs half 1.1.
        TestContext.Current.TestOutputHelper?.WriteLine($"none–A {MaxDifference(none, a)}, A–B {MaxDifference(a, b)}, A–half {MaxDifference(a, half)}");
        Assert.True(MaxDifference(none, a) > 0.5f, $"a ControlNet left the latents nearly unchanged ({MaxDifference(none, a)})");
        Assert.True(MaxDifference(a, b) > 0.05f, $"two control images gave nearly the same latents ({MaxDifference(a, b)})");
        Assert.True(MaxDifference(a, half) > 0.1f, $"scale 0.5 gave nearly scale 1's latents ({MaxDifference(a, half)})");
        // Scale 0 skips the ControlNet: the UNet gets zero residuals, exactly as without one.
        Assert.Equal(none, zero);
    }

    [Fact]
    public async Task AControlNetLoadedAheadIsTheOneRequestsUse()
    {
        // LoadControlNet reads the file once; a request naming its folder (or its model.onnx) then uses that same model.
        var loaded = Pipeline.LoadControlNet(Net());
        Assert.Equal(4, loaded.DownResidualCount);
        Assert.Equal(32, loaded.CrossAttentionWidth);
        Assert.Same(loaded, Pipeline.LoadControlNet(Path.Combine(Net(), "model.onnx")));
        var byFolder = await Pipeline.GenerateAsync(Request(Unit()), cancellationToken: Token);
        var byFile = await Pipeline.GenerateAsync(Request(Unit() with { ModelPath = Path.Combine(Net(), "model.onnx") }), cancellationToken: Token);
        Assert.Equal(byFolder.FinalLatents, byFile.FinalLatents);
        Assert.Same(loaded, Pipeline.LoadControlNet(Net()));
    }

    [Fact]
    public async Task LowMemoryGivesTheSameLatents()
    {
        // Under LowMemory the ControlNet's session is released after each generation and reopened for the next.
        using var lowMemory = StableDiffusionPipeline.Load(Folder, new PipelineOptions { Device = "cpu", LowMemory = true });
        var expected = (await Pipeline.GenerateAsync(Request(Unit("B")), cancellationToken: Token)).FinalLatents;
        Assert.Equal(expected, (await lowMemory.GenerateAsync(Request(Unit("B")), cancellationToken: Token)).FinalLatents);
        Assert.False(lowMemory.LoadControlNet(Net()).Component.IsLoaded);
        Assert.Equal(expected, (await lowMemory.GenerateAsync(Request(Unit("B")), cancellationToken: Token)).FinalLatents);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Img2ImgAndInpaintingTakeControlNets(bool inpaint)
    {
        GenerationRequest With(params ControlNetUnit[] units) => Request(units) with
        {
            InitImage = Img2ImgDiffusersParityTests.Picture(96, 64),
            MaskImage = inpaint ? Img2ImgDiffusersParityTests.LeftHalfMask(96, 64) : null,
            Strength = 0.7f,
        };
        var plain = await Pipeline.GenerateAsync(With(), cancellationToken: Token);
        var controlled = await Pipeline.GenerateAsync(With(Unit("B"), Unit("A", 0.5f, net: 1)), cancellationToken: Token);
        Assert.True(controlled.FinalLatents.All(float.IsFinite));
        Assert.True(MaxDifference(plain.FinalLatents, controlled.FinalLatents) > 0.1f);
        Assert.Equal(plain.UnetEvaluations, controlled.UnetEvaluations);
    }

    [Fact]
    public async Task ABatchKeepsEachRequestsOwnControl()
    {
        var controlled = Request(Unit("B"));
        var plain = Request() with { Seed = 7 };
        var alone = new[]
        {
            (await Pipeline.GenerateAsync(controlled, cancellationToken: Token)).FinalLatents,
            (await Pipeline.GenerateAsync(plain, cancellationToken: Token)).FinalLatents,
        };
        var batch = Pipeline.GenerateBatchAsync([new GenerationBatchItem(controlled), new GenerationBatchItem(plain)]);
        Assert.Equal(alone[0], (await batch[0]).FinalLatents);
        Assert.Equal(alone[1], (await batch[1]).FinalLatents);
    }

    [Fact]
    public async Task AUNetWithoutResidualInputsIsRefused()
    {
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.ModelIncompatibleException>(() => TestModels.Pipeline("tiny").GenerateAsync(Request(Unit()), cancellationToken: Token));
        Assert.Equal(nameof(GenerationRequest.ControlNets), e.ParamName);
        Assert.Contains(Path.Combine(TestModels.PathOf("tiny"), "unet", "model.onnx"), e.Message);
        Assert.Contains("takes no ControlNet residuals", e.Message);
    }

    [Fact]
    public async Task AControlNetOfAnotherFamilyIsRefusedNamingItsFile()
    {
        var other = Path.Combine(TestPaths.ModelsDir, "test", "refused", "controlnet-text48");
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.ModelIncompatibleException>(() => Pipeline.GenerateAsync(Request(Unit() with { ModelPath = other }), cancellationToken: Token));
        Assert.Contains(Path.Combine(other, "model.onnx"), e.Message);
        Assert.Contains("48 wide", e.Message);
        Assert.Contains("takes 32", e.Message);
    }

    [Fact]
    public async Task SdAndSdxlControlNetsAreRefusedForEachOthersUNet()
    {
        var sdxlNet = Path.Combine(TestModels.PathOf("tiny-sdxl-controlnet"), "controlnet");
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.ModelIncompatibleException>(() => Pipeline.GenerateAsync(Request(Unit() with { ModelPath = sdxlNet }), cancellationToken: Token));
        Assert.Contains(Path.Combine(sdxlNet, "model.onnx"), e.Message);
        Assert.Contains("80 wide", e.Message);
        var sdxl = TestModels.Pipeline("tiny-sdxl-controlnet");
        e = await Assert.ThrowsAsync<LocalDiffusion.Errors.ModelIncompatibleException>(() => sdxl.GenerateAsync(Request(Unit()), cancellationToken: Token));
        Assert.Contains(Path.Combine(Net(), "model.onnx"), e.Message);
        Assert.Contains("32 wide", e.Message);
    }

    [Fact]
    public async Task AMissingOrWrongControlNetFileIsNamed()
    {
        var missing = Path.Combine(Folder, "no-such-controlnet");
        var e = await Assert.ThrowsAsync<ModelLoadException>(() => Pipeline.GenerateAsync(Request(Unit() with { ModelPath = missing }), cancellationToken: Token));
        Assert.Equal(missing, e.FilePath);
        // A UNet is not a ControlNet.
        var unet = Path.Combine(Folder, "unet");
        var wrong = await Assert.ThrowsAsync<ModelLoadException>(() => Pipeline.GenerateAsync(Request(Unit() with { ModelPath = unet }), cancellationToken: Token));
        Assert.Contains("does not look like a ControlNet", wrong.Message);
        Assert.Contains(Path.Combine(unet, "model.onnx"), wrong.Message);
    }

    [Fact]
    public async Task ANaNResidualIsReportedNamingTheControlNet()
    {
        // refused/controlnet-nan: controlnet/ with one NaN in its mid-block bias (tools/build_controlnet_test_model.py).
        var nan = Path.Combine(TestPaths.ModelsDir, "test", "refused", "controlnet-nan");
        var e = await Assert.ThrowsAsync<GenerationNumericsException>(() => Pipeline.GenerateAsync(Request(Unit() with { ModelPath = nan }), cancellationToken: Token));
        Assert.Equal(NumericsStage.ControlNet, e.Stage);
        Assert.Equal(1, e.Step);
        Assert.Contains(Path.Combine(nan, "model.onnx"), e.Message);
        Assert.Contains("mid_block_additional_residual", e.Message);
    }

    [Fact]
    public async Task SD3AndFluxRefuseControlNets()
    {
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.ModelIncompatibleException>(() => TestModels.Pipeline("tiny-sd3").GenerateAsync(
            new GenerationRequest { Prompt = "x", Steps = 1, ControlNets = [Unit()] }, cancellationToken: Token));
        Assert.Equal(nameof(GenerationRequest.ControlNets), e.ParamName);
        Assert.Contains("not supported", e.Message);
    }

    public static TheoryData<string, string> BadUnits => new()
    {
        { "scale", "ControlNets[0].Scale is -1" },
        { "window", "GuidanceStart 0.8 and GuidanceEnd 0.3" },
        { "image", "ControlNets[0].Image is missing" },
        { "model", "ControlNets[0] names no ControlNet" },
        { "canny", "Canny thresholds 200/100" },
    };

    [Theory]
    [MemberData(nameof(BadUnits))]
    public async Task BadUnitsAreRefusedBeforeAnyWork(string what, string message)
    {
        var unit = what switch
        {
            "scale" => Unit() with { Scale = -1 },
            "window" => Unit() with { GuidanceStart = 0.8f, GuidanceEnd = 0.3f },
            "image" => Unit() with { Image = null! },
            "model" => Unit() with { ModelPath = null },
            _ => Unit() with { Preprocessor = ControlPreprocessor.Canny, CannyLowThreshold = 200, CannyHighThreshold = 100 },
        };
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => Pipeline.GenerateAsync(Request(unit), cancellationToken: Token));
        Assert.Equal(nameof(GenerationRequest.ControlNets), e.ParamName);
        Assert.Contains(message, e.Message);
    }
}
