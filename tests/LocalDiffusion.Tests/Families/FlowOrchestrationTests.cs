using LocalDiffusion.Pipeline;

namespace LocalDiffusion.Tests.Families;

/// <summary>
/// SD 3 and FLUX run on the same family-neutral orchestrator as SD 1.x/XL, so what it does reaches them: dynamic batching
/// (requests denoised together in one transformer call per step give exactly the latents each gives alone) and the
/// conditioning cache (a repeated prompt is not encoded again, and the picture is bit-identical). The reference is the
/// same pipeline's own result without the feature, whose parity with diffusers FlowFamilyParityTests checks.
/// </summary>
public sealed class FlowOrchestrationTests
{
    private static string Model(string name) => Path.Combine(TestPaths.ModelsDir, "test", name);

    [Theory]
    [InlineData("tiny-sd3")]
    public async Task Batched_requests_give_what_each_gives_alone(string model)
    {
        var token = TestContext.Current.CancellationToken;
        using var pipeline = StableDiffusionPipeline.Load(Model(model), new PipelineOptions { Device = "cpu" });
        GenerationRequest Request(string prompt, long seed) => new() { Prompt = prompt, Width = 64, Height = 48, Steps = 3, Seed = seed };
        var requests = new[] { Request("a red circle", 1), Request("a blue square on grey", 2) };
        Assert.True(pipeline.CanBatch(requests[0], requests[1]));
        var alone = new List<GenerationResult>();
        foreach (var r in requests) alone.Add(await pipeline.GenerateAsync(r, cancellationToken: token));
        var batched = await Task.WhenAll(pipeline.GenerateBatchAsync([.. requests.Select(r => new GenerationBatchItem(r, null, token))]));
        for (var i = 0; i < requests.Length; i++)
        {
            Assert.Equal(2, batched[i].BatchSize);
            Assert.Equal(alone[i].FinalLatents, batched[i].FinalLatents);
            Assert.Equal(alone[i].Images[0].Rgb, batched[i].Images[0].Rgb);
        }
    }

    [Theory]
    [InlineData("tiny-flux-dev")]
    [InlineData("tiny-flux-schnell")]
    public async Task Flux_requests_run_alone_and_keep_their_own_results(string model)
    {
        // FLUX's transformer differs in the last bits between one row and two (FluxModel.BatchesExactly), so its requests are
        // not batched: a batch call still returns every request's own result.
        var token = TestContext.Current.CancellationToken;
        using var pipeline = StableDiffusionPipeline.Load(Model(model), new PipelineOptions { Device = "cpu" });
        var request = new GenerationRequest { Prompt = "a red circle", Width = 64, Height = 48, Steps = 3, Seed = 3 };
        Assert.False(pipeline.CanBatch(request, request with { Seed = 7 }));
        var alone = await pipeline.GenerateAsync(request, cancellationToken: token);
        var batched = await Task.WhenAll(pipeline.GenerateBatchAsync([new GenerationBatchItem(request, null, token), new GenerationBatchItem(request with { Seed = 7 }, null, token)]));
        Assert.Equal(1, batched[0].BatchSize);
        Assert.Equal(alone.FinalLatents, batched[0].FinalLatents);
    }

    [Theory]
    [InlineData("tiny-sd3")]
    [InlineData("tiny-flux-dev")]
    public async Task The_conditioning_cache_serves_a_repeated_prompt_bit_identically(string model)
    {
        var token = TestContext.Current.CancellationToken;
        using var cached = StableDiffusionPipeline.Load(Model(model), new PipelineOptions { Device = "cpu", PromptCacheEntries = 4 });
        using var plain = StableDiffusionPipeline.Load(Model(model), new PipelineOptions { Device = "cpu" });
        var request = new GenerationRequest { Prompt = "a red circle", NegativePrompt = "blur", Width = 64, Height = 48, Steps = 2, Seed = 5, GuidanceScale = 4f };
        var expected = (await plain.GenerateAsync(request, cancellationToken: token)).FinalLatents;
        Assert.Equal(expected, (await cached.GenerateAsync(request, cancellationToken: token)).FinalLatents);
        Assert.Equal(0, cached.PromptCacheHits);
        Assert.Equal(expected, (await cached.GenerateAsync(request, cancellationToken: token)).FinalLatents);
        Assert.Equal(1, cached.PromptCacheHits);
        // Another T5 length is another conditioning: not served from the cache.
        var shorter = request with { MaxSequenceLength = 8 };
        Assert.Equal((await plain.GenerateAsync(shorter, cancellationToken: token)).FinalLatents, (await cached.GenerateAsync(shorter, cancellationToken: token)).FinalLatents);
        Assert.Equal(1, cached.PromptCacheHits);
    }
}
