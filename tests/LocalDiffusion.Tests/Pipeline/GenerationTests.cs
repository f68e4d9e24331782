using System.Numerics.Tensors;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>End-to-end generation on the random-weight test models, through ONNX Runtime.</summary>
public class GenerationTests
{
    public static TheoryData<string> Variants => new(TestModels.Variants);

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task EachVariantGeneratesAFiniteImageOfTheRequestedSize(string variant)
    {
        var result = await TestModels.Pipeline(variant).GenerateAsync(TestModels.Request(), cancellationToken: TestContext.Current.CancellationToken);

        var image = Assert.Single(result.Images);
        Assert.Equal((64, 64), (image.Width, image.Height));
        Assert.Equal(64 * 64 * 3, image.Rgb.Length);
        Assert.Equal([1, 4, 8, 8], result.LatentShape);
        Assert.All(result.FinalLatents, v => Assert.True(float.IsFinite(v)));
        // A real picture, not a flat fill: the random VAE still maps latents to varied pixels.
        Assert.True(image.Rgb.Distinct().Count() > 16, "the image is (nearly) uniform");
        var decoded = GeneratedImage.LoadPng(TestPaths.WriteTempFile(image.EncodePng(), ".png"));
        Assert.Equal(image.Rgb, decoded.Rgb);
    }

    [Fact]
    public async Task SameSeedGivesIdenticalBytesAndAnotherSeedDoesNot()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var ct = TestContext.Current.CancellationToken;
        var a = await pipeline.GenerateAsync(TestModels.Request(seed: 7), cancellationToken: ct);
        var b = await pipeline.GenerateAsync(TestModels.Request(seed: 7), cancellationToken: ct);
        var c = await pipeline.GenerateAsync(TestModels.Request(seed: 8), cancellationToken: ct);

        Assert.Equal(a.Images[0].EncodePng(), b.Images[0].EncodePng());
        Assert.NotEqual(a.Images[0].Rgb, c.Images[0].Rgb);
    }

    [Fact]
    public async Task NegativePromptChangesTheResult()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var ct = TestContext.Current.CancellationToken;
        var plain = await pipeline.GenerateAsync(TestModels.Request(), cancellationToken: ct);
        var negative = await pipeline.GenerateAsync(TestModels.Request() with { NegativePrompt = "green square" }, cancellationToken: ct);

        Assert.NotEqual(plain.FinalLatents, negative.FinalLatents);
    }

    [Fact]
    public async Task PromptChangesTheResult()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var ct = TestContext.Current.CancellationToken;
        var a = await pipeline.GenerateAsync(TestModels.Request("a red circle"), cancellationToken: ct);
        var b = await pipeline.GenerateAsync(TestModels.Request("a yellow star at the top"), cancellationToken: ct);

        Assert.NotEqual(a.FinalLatents, b.FinalLatents);
    }

    [Fact]
    public async Task GuidanceOneRunsOneUnetCallPerStepAndIgnoresTheNegativePrompt()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var ct = TestContext.Current.CancellationToken;
        var request = TestModels.Request() with { GuidanceScale = 1f, Scheduler = "ddim", Steps = 5 };
        var plain = await pipeline.GenerateAsync(request, cancellationToken: ct);
        var negative = await pipeline.GenerateAsync(request with { NegativePrompt = "green square" }, cancellationToken: ct);

        Assert.Equal(5, plain.UnetEvaluations);
        Assert.Equal(5, plain.UnetCalls);
        Assert.Equal(plain.FinalLatents, negative.FinalLatents);
    }

    [Fact]
    public async Task StaticBatchOneRunsTheTwoGuidanceHalvesAsTwoCalls()
    {
        var result = await TestModels.Pipeline("tiny-static").GenerateAsync(
            TestModels.Request() with { Scheduler = "ddim", Steps = 3 }, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(3, result.UnetEvaluations);
        Assert.Equal(6, result.UnetCalls);
    }

    [Theory]
    [InlineData("tiny-optimum")]   // int64 ids, float scalar timestep
    [InlineData("tiny-external")]  // external-data weights
    [InlineData("tiny-static")]    // CFG as two batch-1 calls
    public async Task FormatVariantsOfTheSameWeightsAgreeWithTheReference(string variant)
    {
        // Same weights in every variant (tools/build_test_models.py): only the I/O format differs, so the
        // engine's adaptation must not change the numbers beyond float rounding of the batched kernels.
        var ct = TestContext.Current.CancellationToken;
        var request = TestModels.Request() with { Scheduler = "ddim" };
        var reference = await TestModels.Pipeline("tiny").GenerateAsync(request, cancellationToken: ct);
        var other = await TestModels.Pipeline(variant).GenerateAsync(request, cancellationToken: ct);

        Assert.True(MaxAbsDiff(reference.FinalLatents, other.FinalLatents) < 1e-4f,
            $"latents differ by {MaxAbsDiff(reference.FinalLatents, other.FinalLatents)}");
    }

    [Fact]
    public async Task Float16VariantStaysCloseToFloat32()
    {
        var ct = TestContext.Current.CancellationToken;
        var request = TestModels.Request() with { Scheduler = "ddim" };
        var fp32 = await TestModels.Pipeline("tiny").GenerateAsync(request, cancellationToken: ct);
        var fp16 = await TestModels.Pipeline("tiny-fp16").GenerateAsync(request, cancellationToken: ct);

        // fp16 weights and activations: differences of a few 1e-3 of the latents' scale, not a different image.
        var scale = TensorPrimitives.MaxMagnitude(fp32.FinalLatents);
        Assert.True(MaxAbsDiff(fp32.FinalLatents, fp16.FinalLatents) < 0.05f * scale,
            $"fp16 latents differ by {MaxAbsDiff(fp32.FinalLatents, fp16.FinalLatents)} (scale {scale})");
    }

    [Fact]
    public async Task SeveralImagesComeFromOneBatchAndDiffer()
    {
        var result = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { ImageCount = 3 },
            cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(3, result.Images.Count);
        Assert.Equal([3, 4, 8, 8], result.LatentShape);
        Assert.NotEqual(result.Images[0].Rgb, result.Images[1].Rgb);
        Assert.Contains("Batch pos: 2", result.Images[2].Parameters);
    }

    [Fact]
    public async Task GivenInitialLatentsReplaceTheSeedsNoise()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var ct = TestContext.Current.CancellationToken;
        var request = TestModels.Request() with { Scheduler = "ddim" };
        var fromSeed = await pipeline.GenerateAsync(request, cancellationToken: ct);
        var noise = new LocalDiffusion.Randomness.TorchGenerator(42).Normal(4 * 8 * 8);
        var fromLatents = await pipeline.GenerateAsync(request with { Seed = 999, InitialLatents = noise }, cancellationToken: ct);

        // The seed's noise is torch.randn(seed 42); handing it over explicitly must give the same result.
        Assert.Equal(fromSeed.FinalLatents, fromLatents.FinalLatents);
    }

    [Fact]
    public async Task ProgressReportsEveryEvaluationInOrder()
    {
        var reports = new List<GenerationProgress>();
        var progress = new SyncProgress<GenerationProgress>(reports.Add);
        await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { Steps = 6, Scheduler = "ddim" }, progress,
            TestContext.Current.CancellationToken);

        var steps = reports.Where(r => r.Phase == GenerationPhase.Denoising).Select(r => r.Step).ToList();
        Assert.Equal([1, 2, 3, 4, 5, 6], steps);
        Assert.All(reports.Where(r => r.Phase == GenerationPhase.Denoising), r => Assert.Equal(6, r.TotalSteps));
        Assert.Equal(GenerationPhase.Done, reports[^1].Phase);
    }

    [Fact]
    public async Task PngCarriesTheGenerationParameters()
    {
        var result = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { NegativePrompt = "blurry" },
            cancellationToken: TestContext.Current.CancellationToken);

        var texts = PngTextChunks.Read(result.Images[0].EncodePng());
        var parameters = texts["parameters"];
        Assert.StartsWith("a red circle on a blue background\nNegative prompt: blurry\nSteps: 4, ", parameters);
        Assert.Contains("Seed: 42", parameters);
        Assert.Contains("Size: 64x64", parameters);
    }

    private static float MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        var diff = new float[a.Length];
        TensorPrimitives.Subtract(a, b, diff);
        return TensorPrimitives.MaxMagnitude(diff);
    }
}

/// <summary>Collects progress synchronously (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
