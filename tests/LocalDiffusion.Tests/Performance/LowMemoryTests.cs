using LocalDiffusion.Pipeline;
using LocalDiffusion.Tests.ImageToImage;
using LocalDiffusion.Tests.Pipeline;

namespace LocalDiffusion.Tests.Performance;

/// <summary>
/// <see cref="PipelineOptions.LowMemory"/> (issue 12's memory goal): each model's session is open only while its stage
/// runs, and reopened by the next stage that needs it. Where buffers live changes; the numbers must not, so every
/// picture and latent is compared bit for bit with the same request on a pipeline that keeps everything loaded.
/// (What it saves is measured, not asserted: benchmarks/README.md, SD-1.5 size at 512², peak 5.9 → 4.0 GB.)
/// </summary>
public class LowMemoryTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static StableDiffusionPipeline Load(bool lowMemory, string variant = "tiny") =>
        StableDiffusionPipeline.Load(TestModels.PathOf(variant), new PipelineOptions { Device = "cpu", UseModelCache = false, LowMemory = lowMemory });

    private static GenerationRequest Request(long seed = 42) => TestModels.Request(seed: seed) with { Steps = 4, Scheduler = "dpmpp_2m" };

    [Fact]
    public async Task EachStageHoldsOnlyItsOwnModelAndThePicturesAreBitIdentical()
    {
        using var kept = Load(lowMemory: false);
        var reference = await kept.GenerateAsync(Request(), cancellationToken: Token);
        Assert.Equal(["text_encoder", "unet", "vae_decoder"], kept.OpenSessions());

        using var lean = Load(lowMemory: true);
        // Loading opens everything (and so checks every file); the first generation uses those sessions.
        Assert.Equal(["text_encoder", "unet", "vae_decoder"], lean.OpenSessions());
        for (var generation = 0; generation < 2; generation++)
        {
            var seen = new Dictionary<GenerationPhase, List<string>>();
            var progress = new SyncProgress<GenerationProgress>(p =>
            {
                if (!seen.ContainsKey(p.Phase)) seen[p.Phase] = [.. lean.OpenSessions()];
            });
            var result = await lean.GenerateAsync(Request(), progress, Token);
            Assert.Equal(reference.FinalLatents, result.FinalLatents);
            Assert.Equal(reference.Images[0].Rgb, result.Images[0].Rgb);
            // Between steps only the UNet is open; decoding starts after it was released; nothing stays open after.
            Assert.Equal(["unet"], seen[GenerationPhase.Denoising].Except(["vae_decoder"]).ToList());
            Assert.DoesNotContain("text_encoder", seen[GenerationPhase.Denoising]);
            Assert.DoesNotContain("unet", seen[GenerationPhase.Decoding]);
            Assert.Empty(lean.OpenSessions());
        }
    }

    [Fact]
    public async Task ConcurrentAndBatchedGenerationsShareTheReopenedSessionsSafely()
    {
        long[] seeds = [1, 2, 3];
        using var kept = Load(lowMemory: false);
        var alone = new List<GenerationResult>();
        foreach (var seed in seeds) alone.Add(await kept.GenerateAsync(Request(seed), cancellationToken: Token));

        using var lean = Load(lowMemory: true);
        // Several generations open and release the same sessions at once: each must find its session open while it runs.
        for (var round = 0; round < 2; round++)
        {
            var concurrent = await Task.WhenAll(seeds.Select(seed => lean.GenerateAsync(Request(seed), cancellationToken: Token)));
            for (var i = 0; i < seeds.Length; i++) Assert.Equal(alone[i].FinalLatents, concurrent[i].FinalLatents);
            Assert.Empty(lean.OpenSessions());
        }
        var batched = await Task.WhenAll(lean.GenerateBatchAsync(seeds.Select(seed => new GenerationBatchItem(Request(seed), null, Token)).ToList()));
        for (var i = 0; i < seeds.Length; i++)
        {
            Assert.Equal(alone[i].FinalLatents, batched[i].FinalLatents);
            Assert.Equal(alone[i].Images[0].Rgb, batched[i].Images[0].Rgb);
        }
        Assert.Empty(lean.OpenSessions());
    }

    [Fact]
    public async Task ImageToImageOpensTheVaeEncoderOnlyForEncoding()
    {
        var request = Request() with { InitImage = Img2ImgDiffusersParityTests.Picture(64, 64), Strength = 0.6f, Scheduler = "euler" };
        using var kept = Load(lowMemory: false);
        var reference = await kept.GenerateAsync(request, cancellationToken: Token);

        using var lean = Load(lowMemory: true);
        for (var generation = 0; generation < 2; generation++)
        {
            var result = await lean.GenerateAsync(request, cancellationToken: Token);
            Assert.Equal(reference.FinalLatents, result.FinalLatents);
            Assert.Equal(reference.Images[0].Rgb, result.Images[0].Rgb);
            Assert.Empty(lean.OpenSessions());
        }
    }

    [Fact]
    public async Task AModelFileRemovedAfterLoadingIsNamedWhenItIsReopened()
    {
        using var copy = TestModels.CopyOf("tiny");
        using var lean = StableDiffusionPipeline.Load(copy.Path, new PipelineOptions { Device = "cpu", UseModelCache = false, LowMemory = true });
        await lean.GenerateAsync(Request(), cancellationToken: Token);
        var unet = Path.Combine(copy.Path, "unet", "model.onnx");
        File.Delete(unet);
        var e = await Assert.ThrowsAsync<LocalDiffusion.Onnx.ModelLoadException>(() => lean.GenerateAsync(Request(), cancellationToken: Token));
        Assert.Contains(unet, e.Message);
        Assert.Contains("file not found", e.Message);
    }
}
