using LocalDiffusion.Pipeline;
namespace LocalDiffusion.Tests.Performance;

/// <summary>
/// <see cref="PipelineOptions.MaxUnetBatch"/>: the rows of an evaluation split over several UNet calls (1: the guidance
/// pair as two calls, AUTOMATIC1111's behaviour without batch_cond_uncond). With weight prepacking on, a row's arithmetic
/// does not depend on how many rows share its call, so the split must be bit-identical; with the CPU default (prepacking
/// off) a one-row call multiplies in another order (measured in <see cref="Pipeline.BatchGenerationTests"/>: ≤ 5e-6 of the
/// latents' scale), so the comparison there is within 1e-5 of it.
/// </summary>
public class UnetBatchLimitTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task<GenerationResult> Generate(int? maxUnetBatch, bool prepack, int images = 1)
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"),
            new PipelineOptions { Device = "cpu", UseModelCache = false, MaxUnetBatch = maxUnetBatch, PrepackWeights = prepack });
        return await pipeline.GenerateAsync(TestModels.Request() with { Steps = 4, Scheduler = "dpmpp_2m", ImageCount = images }, cancellationToken: Token);
    }

    [Theory]
    [InlineData(1, 1)]  // the guidance pair as two calls
    [InlineData(3, 4)]  // 6 rows as 4 + 2
    [InlineData(2, 8)]  // a limit above the rows: one call
    public async Task SplittingTheRowsChangesTheCallsNotThePictures(int images, int maxUnetBatch)
    {
        var whole = await Generate(null, prepack: true, images);
        var split = await Generate(maxUnetBatch, prepack: true, images);
        var rows = 2 * images;
        Assert.Equal(whole.UnetEvaluations * ((rows + maxUnetBatch - 1) / maxUnetBatch), split.UnetCalls);
        Assert.Equal(whole.UnetEvaluations, whole.UnetCalls);
        Assert.Equal(whole.FinalLatents, split.FinalLatents);
        for (var i = 0; i < images; i++) Assert.Equal(whole.Images[i].Rgb, split.Images[i].Rgb);
    }

    [Fact]
    public async Task WithTheCpuDefaultsOneRowCallsAgreeToFloatRounding()
    {
        var whole = await Generate(null, prepack: false);
        var split = await Generate(1, prepack: false);
        var scale = whole.FinalLatents.Max(MathF.Abs);
        var worst = whole.FinalLatents.Zip(split.FinalLatents, (a, b) => MathF.Abs(a - b)).Max();
        Assert.True(worst <= 1e-5f * scale, $"largest difference {worst} against latents of scale {scale}");
    }

    // The default follows the family: SDXL's guidance pair is two calls on the CPU (its 1024² working memory, measured in
    // benchmarks/README.md), SD 1.x's one; an explicit limit wins either way.
    [Theory]
    [InlineData("tiny-sdxl", null, 2)]
    [InlineData("tiny-sdxl", 2, 1)]
    [InlineData("tiny", null, 1)]
    [InlineData("tiny", 1, 2)]
    public async Task TheDefaultSplitsSdxlsGuidancePairOnTheCpu(string model, int? maxUnetBatch, int callsPerStep)
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf(model),
            new PipelineOptions { Device = "cpu", UseModelCache = false, MaxUnetBatch = maxUnetBatch });
        var result = await pipeline.GenerateAsync(TestModels.Request() with { Steps = 2, Scheduler = "euler", GuidanceScale = 5f }, cancellationToken: Token);
        Assert.Equal(2, result.UnetEvaluations);
        Assert.Equal(2 * callsPerStep, result.UnetCalls);
    }

    [Fact]
    public void ALimitBelowOneIsNamed()
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() =>
            StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { MaxUnetBatch = 0 }));
        Assert.Equal("MaxUnetBatch", e.ParamName);
    }
}
