using LocalDiffusion.Tests.ImageToImage;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>
/// <see cref="GenerationRequest.SeedPerImage"/>: AUTOMATIC1111's numbering of a batch, image i drawn from seed + i. The
/// reference is independent of the batch: the one-image request for that seed alone, which the diffusers parity tests
/// hold to diffusers. With classifier-free guidance every UNet call has two or more rows, so batched rows are
/// bit-identical to lone ones (see <see cref="BatchGenerationTests"/>).
/// </summary>
public class SeedPerImageTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("euler_a")]      // ancestral: each image's step noise from its own generator
    [InlineData("dpmpp_2m")]
    public async Task EachImageIsTheOneItsOwnSeedMakesAlone(string scheduler)
    {
        var pipeline = TestModels.Pipeline("tiny");
        var request = TestModels.Request(seed: 10) with { Scheduler = scheduler, Steps = 5, ImageCount = 3, SeedPerImage = true };
        var reports = new List<GenerationProgress>();
        var batch = await pipeline.GenerateAsync(request, new SyncProgress<GenerationProgress>(reports.Add), Token);
        Assert.Equal([10L, 11L, 12L], batch.Seeds);
        Assert.Equal(10, batch.Seed);
        Assert.Equal([3, 4, 8, 8], batch.LatentShape);
        var item = batch.FinalLatents.Length / 3;
        for (var i = 0; i < 3; i++)
        {
            var alone = await pipeline.GenerateAsync(request with { ImageCount = 1, SeedPerImage = false, Seed = 10 + i }, cancellationToken: Token);
            Assert.Equal(alone.FinalLatents, batch.FinalLatents[(i * item)..((i + 1) * item)]);
            Assert.Equal(alone.Images[0].Rgb, batch.Images[i].Rgb);
            Assert.Contains($"Seed: {10 + i},", batch.Images[i].Parameters);
        }
        // One request's progress: each step once, one Done at the end.
        Assert.Equal(5, reports.Count(r => r.Phase == GenerationPhase.Denoising));
        Assert.Equal(GenerationPhase.Done, reports[^1].Phase);
        Assert.Single(reports, r => r.Phase == GenerationPhase.Done);
    }

    // SD 3 and FLUX too: SD 3's images are denoised in one call (bit-identical to alone, FlowOrchestrationTests), FLUX's one
    // at a time (its transformer differs in the last bits between one row and two), so both equal their lone requests exactly.
    [Theory]
    [InlineData("tiny-sd3")]
    [InlineData("tiny-flux-dev")]
    [InlineData("tiny-flux-schnell")]
    public async Task FlowFamiliesNumberTheirSeedsToo(string model)
    {
        using var pipeline = LocalDiffusion.Pipeline.StableDiffusionPipeline.Load(TestModels.PathOf(model), new PipelineOptions { Device = "cpu" });
        var request = new GenerationRequest { Prompt = "a red circle", Width = 64, Height = 48, Steps = 3, Seed = 20, ImageCount = 2, SeedPerImage = true };
        var batch = await pipeline.GenerateAsync(request, cancellationToken: Token);
        Assert.Equal([20L, 21L], batch.Seeds);
        var item = batch.FinalLatents.Length / 2;
        for (var i = 0; i < 2; i++)
        {
            var alone = await pipeline.GenerateAsync(request with { ImageCount = 1, SeedPerImage = false, Seed = 20 + i }, cancellationToken: Token);
            Assert.Equal(alone.FinalLatents, batch.FinalLatents[(i * item)..((i + 1) * item)]);
            Assert.Equal(alone.Images[0].Rgb, batch.Images[i].Rgb);
        }
    }

    [Fact]
    public async Task Img2imgBatchesNumberTheirSeedsToo()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var request = TestModels.Request(seed: 3) with
        {
            Scheduler = "euler_a", Steps = 6, ImageCount = 2, SeedPerImage = true, InitImage = Img2ImgDiffusersParityTests.Picture(64, 64), Strength = 0.7f,
        };
        var batch = await pipeline.GenerateAsync(request, cancellationToken: Token);
        var second = await pipeline.GenerateAsync(request with { ImageCount = 1, SeedPerImage = false, Seed = 4 }, cancellationToken: Token);
        Assert.Equal(second.Images[0].Rgb, batch.Images[1].Rgb);
    }

    [Fact]
    public async Task WithoutItOneGeneratorDrawsTheBatch()
    {
        var result = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request(seed: 7) with { Steps = 2, ImageCount = 2 }, cancellationToken: Token);
        Assert.Equal([7L, 7L], result.Seeds);
    }

    [Fact]
    public async Task ItIsRefusedWithLatentsThatCoverTheWholeBatch()
    {
        var request = TestModels.Request() with { ImageCount = 2, SeedPerImage = true, InitialLatents = new float[2 * 4 * 8 * 8] };
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => TestModels.Pipeline("tiny").GenerateAsync(request, cancellationToken: Token));
        Assert.Equal("SeedPerImage", e.ParamName);
    }
}
