using LocalDiffusion.Pipeline;
using LocalDiffusion.Imaging;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.ImageToImage;

/// <summary>img2img/inpainting/eta request rules: refusals name the field before any work; the size rule; eta reaches the scheduler.</summary>
public class ImageRequestTests
{
    private static readonly InitImage Picture = Img2ImgDiffusersParityTests.Picture(64, 64);

    public static TheoryData<string, GenerationRequest> BadRequests => new()
    {
        { "Strength", TestModels.Request() with { InitImage = Picture, Strength = 0f } },
        { "Strength", TestModels.Request() with { InitImage = Picture, Strength = 1.5f } },
        { "Strength", TestModels.Request() with { InitImage = Picture, Steps = 4, Strength = 0.2f } }, // int(4·0.2) = 0 steps
        { "MaskImage", TestModels.Request() with { MaskImage = Picture } },
        { "MaskBlur", TestModels.Request() with { InitImage = Picture, MaskImage = Picture, MaskBlur = -1f } },
        { "Eta", TestModels.Request() with { Eta = -0.5f } },
        { "Eta", TestModels.Request() with { Eta = 1.5f, Scheduler = "tcd" } }, // TCD's gamma lies in [0, 1]
        { "InitialLatents", TestModels.Request() with { InitImage = Picture, InitialLatents = new float[4 * 8 * 8] } },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadFieldIsNamed(string field, GenerationRequest request)
    {
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => TestModels.Pipeline("tiny").GenerateAsync(request));
        Assert.Equal(field, e.ParamName);
    }

    [Fact]
    public async Task ModelWithoutVaeEncoderRefusesAnInitImage()
    {
        using var copy = TestModels.CopyOf("tiny");
        Directory.Delete(Path.Combine(copy.Path, "vae_encoder"), recursive: true);
        using var pipeline = StableDiffusionPipeline.Load(copy.Path, new PipelineOptions { Device = "cpu" });
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => pipeline.GenerateAsync(TestModels.Request() with { InitImage = Picture }));
        Assert.Equal("InitImage", e.ParamName);
        Assert.Contains("vae_encoder", e.Message);
    }

    [Fact]
    public async Task PluginSchedulerWithoutAddNoiseIsRefusedByName()
    {
        var registry = new SchedulerRegistry();
        registry.Register(new SchedulerInfo("no_noise", "No Noise", "NoNoiseScheduler", Aliases: [], IsStochastic: false), _ => new NoAddNoise());
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cpu", Schedulers = registry });
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(
            () => pipeline.GenerateAsync(TestModels.Request() with { InitImage = Picture, Scheduler = "no_noise" }));
        Assert.Equal("Scheduler", e.ParamName);
        Assert.Contains("AddNoise", e.Message);
    }

    [Fact]
    public async Task WithoutASizeTheInitImageSizeRoundedDownToEightIsUsed_WithOneItIsResized()
    {
        var odd = Img2ImgDiffusersParityTests.Picture(100, 70);
        var own = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { Width = null, Height = null, InitImage = odd },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal((96, 64), (own.Images[0].Width, own.Images[0].Height));
        var resized = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { Width = 64, Height = 64, InitImage = odd },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal((64, 64), (resized.Images[0].Width, resized.Images[0].Height));
        // Resizing is what the engine does first: the same result as giving the picture already resized.
        var preResized = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { InitImage = odd.Resize(64, 64) },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(preResized.FinalLatents, resized.FinalLatents);
    }

    [Fact]
    public async Task EtaReachesDdimAndDefaultsToZero()
    {
        var token = TestContext.Current.CancellationToken;
        var request = TestModels.Request() with { Scheduler = "ddim" };
        var plain = await TestModels.Pipeline("tiny").GenerateAsync(request, cancellationToken: token);
        var zero = await TestModels.Pipeline("tiny").GenerateAsync(request with { Eta = 0f }, cancellationToken: token);
        var noisy = await TestModels.Pipeline("tiny").GenerateAsync(request with { Eta = 1f }, cancellationToken: token);
        Assert.Equal(plain.FinalLatents, zero.FinalLatents);
        Assert.NotEqual(plain.FinalLatents, noisy.FinalLatents);
    }

    private sealed class NoAddNoise : IScheduler
    {
        private float[] _timesteps = [];
        public IReadOnlyList<float> Timesteps => _timesteps;
        public float InitNoiseSigma => 1f;
        public void SetTimesteps(int inferenceSteps) => _timesteps = [.. Enumerable.Range(0, inferenceSteps).Select(i => 999f - i)];
        public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);
        public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator) { }
    }
}

/// <summary>9-channel inpainting UNets load, and are refused for anything but inpainting.</summary>
public class InpaintingUnetTests
{
    [Fact]
    public async Task NineChannelStandInLoadsAndTextToImageIsRefusedNamingMaskImage()
    {
        // The stand-in of tools/build_refused_unets.py (refused before 9-channel UNets were supported).
        using var model = TestModels.CopyOf("tiny");
        File.Copy(Path.Combine(TestPaths.ModelsDir, "test", "refused", "unet-inpainting.onnx"), Path.Combine(model.Path, "unet", "model.onnx"), overwrite: true);
        using var pipeline = StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" });
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => pipeline.GenerateAsync(TestModels.Request()));
        Assert.Equal("MaskImage", e.ParamName);
        Assert.Contains("9-channel inpainting UNet", e.Message);
    }

    [Fact]
    public async Task NineChannelInpaintingKeepsTheUnmaskedPixels()
    {
        var picture = Img2ImgDiffusersParityTests.Picture(64, 64);
        var result = await TestModels.Pipeline("tiny-inpainting").GenerateAsync(TestModels.Request() with
        {
            InitImage = picture,
            MaskImage = Img2ImgDiffusersParityTests.LeftHalfMask(64, 64),
        }, cancellationToken: TestContext.Current.CancellationToken);
        var rgb = result.Images[0].Rgb;
        for (var y = 0; y < 64; y++)
            for (var x = 32; x < 64; x++)
                Assert.Equal(picture.Rgb[(y * 64 + x) * 3], rgb[(y * 64 + x) * 3]);
        Assert.NotEqual(picture.Rgb[..(32 * 3)], rgb[..(32 * 3)]);
    }
}

/// <summary>A bad VAE encoder file is reported, naming it, when an init image first needs it.</summary>
public class VaeEncoderLoadTests
{
    [Fact]
    public async Task CorruptVaeEncoderIsNamedOnFirstImageRequest()
    {
        using var copy = TestModels.CopyOf("tiny");
        var encoder = Path.Combine(copy.Path, "vae_encoder", "model.onnx");
        File.WriteAllText(encoder, "not a model");
        using var pipeline = StableDiffusionPipeline.Load(copy.Path, new PipelineOptions { Device = "cpu" }); // text-to-image does not need it
        Assert.NotEmpty((await pipeline.GenerateAsync(TestModels.Request() with { Steps = 2 })).Images); // nor loads it
        var e = await Assert.ThrowsAsync<LocalDiffusion.Onnx.ModelLoadException>(() => pipeline.GenerateAsync(TestModels.Request() with
        {
            InitImage = Img2ImgDiffusersParityTests.Picture(64, 64),
        }));
        Assert.Equal(encoder, e.FilePath);
    }
}

/// <summary>ModelInfo.Tasks and <c>info</c> say what a model can do.</summary>
public class ModelTasksTests
{
    [Theory]
    [InlineData("tiny", "text-to-image, img2img, inpainting")]
    [InlineData("tiny-inpainting", "inpainting (9-channel UNet)")]
    public async Task InfoListsTheTasks(string variant, string tasks)
    {
        Assert.Equal(tasks, string.Join(", ", TestModels.Pipeline(variant).Info.Tasks));
        var (code, output, error) = await Cli.CliRunner.Run("info", "--model", TestModels.PathOf(variant), "--device", "cpu");
        Assert.True(code == 0, error);
        Assert.Contains(tasks, output);
    }
}
