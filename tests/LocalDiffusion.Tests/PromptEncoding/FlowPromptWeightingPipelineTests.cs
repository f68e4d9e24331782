using LocalDiffusion.Errors;
using LocalDiffusion.Pipeline;

namespace LocalDiffusion.Tests.PromptEncoding;

/// <summary>
/// A1111 prompt weighting through whole SD 3 and FLUX.1 generations on the tiny models: a weight changes the picture, the
/// same words without markup do not give it, BREAK is reported as ignored, bad weights are refused before work, and the
/// conditioning cache keeps weighted and plain encodings apart. The numbers compared are the engine's own runs (same
/// seed, so only the conditioning differs); FlowPromptWeightingTests checks the conditioning against torch.
/// </summary>
public sealed class FlowPromptWeightingPipelineTests
{
    private static string Model(string name) => Path.Combine(TestPaths.ModelsDir, "test", name);

    private static StableDiffusionPipeline Load(string name, int cache = 0) =>
        StableDiffusionPipeline.Load(Model(name), new PipelineOptions { Device = "cpu", UseModelCache = false, PromptCacheEntries = cache });

    private static GenerationRequest Request(string prompt) => new()
    {
        Prompt = prompt, Steps = 2, Width = 64, Height = 48, Seed = 11, MaxSequenceLength = 16, GuidanceScale = 3f,
    };

    [Theory]
    [InlineData("tiny-sd3")]
    [InlineData("tiny-flux-dev")]
    [InlineData("tiny-flux-schnell")]
    public async Task A_weight_changes_the_latents_and_weighting_off_reads_it_as_text(string model)
    {
        using var pipeline = Load(model);
        var weighted = await pipeline.GenerateAsync(Request("a photo of a (red cat:1.5) on a beach"));
        var plain = await pipeline.GenerateAsync(Request("a photo of a red cat on a beach"));
        var asText = await pipeline.GenerateAsync(Request("a photo of a (red cat:1.5) on a beach") with { PromptWeighting = false });
        Assert.NotEqual(plain.FinalLatents, weighted.FinalLatents);
        Assert.NotEqual(asText.FinalLatents, weighted.FinalLatents);
        Assert.NotEqual(asText.FinalLatents, plain.FinalLatents);
        Assert.DoesNotContain(weighted.Warnings, w => w.Contains("BREAK"));
        // A plain prompt is the same picture with weighting on and off.
        var plainOff = await pipeline.GenerateAsync(Request("a photo of a red cat on a beach") with { PromptWeighting = false });
        Assert.Equal(plainOff.FinalLatents, plain.FinalLatents);
    }

    [Fact]
    public async Task Sd3_weights_the_negative_prompt_too()
    {
        using var pipeline = Load("tiny-sd3");
        var plain = await pipeline.GenerateAsync(Request("a red cat") with { NegativePrompt = "blurry" });
        var weighted = await pipeline.GenerateAsync(Request("a red cat") with { NegativePrompt = "(blurry:1.6)" });
        Assert.NotEqual(plain.FinalLatents, weighted.FinalLatents);
    }

    [Theory]
    [InlineData("tiny-sd3", "SD 3")]
    [InlineData("tiny-flux-schnell", "FLUX.1-schnell")]
    public async Task Break_is_ignored_with_a_warning(string model, string name)
    {
        using var pipeline = Load(model);
        var result = await pipeline.GenerateAsync(Request("a red cat BREAK a blue dog"));
        Assert.Contains(result.Warnings, w => w.Contains("prompt's BREAK was ignored") && w.Contains(name));
        // As plain text BREAK is a word like any other: no warning.
        var off = await pipeline.GenerateAsync(Request("a red cat BREAK a blue dog") with { PromptWeighting = false });
        Assert.DoesNotContain(off.Warnings, w => w.Contains("BREAK"));
    }

    [Theory]
    [InlineData("tiny-sd3")]
    [InlineData("tiny-flux-dev")]
    public async Task An_unreadable_or_overflowing_weight_is_refused_naming_the_prompt(string model)
    {
        using var pipeline = Load(model);
        var unreadable = await Assert.ThrowsAsync<InvalidRequestException>(() => pipeline.GenerateAsync(Request("a (red cat:1..5)")));
        Assert.Equal("Prompt", unreadable.ParamName);
        Assert.Contains("1..5", unreadable.Message);
        // 3.4e38 (A1111's weights are digits and dots) is a finite float32, but the weighted conditioning overflows.
        var overflow = await Assert.ThrowsAsync<InvalidRequestException>(() => pipeline.GenerateAsync(Request("a (red cat:340000000000000000000000000000000000000)")));
        Assert.Equal("Prompt", overflow.ParamName);
        Assert.Contains("overflow", overflow.Message);
        Assert.Contains("\"red cat\"", overflow.Message);
        // The same text as plain text is fine.
        await pipeline.GenerateAsync(Request("a (red cat:1..5)") with { PromptWeighting = false, Steps = 1 });
    }

    [Fact]
    public async Task The_conditioning_cache_keeps_weighted_and_plain_encodings_apart()
    {
        using var pipeline = Load("tiny-flux-schnell", cache: 8);
        var weighted = await pipeline.GenerateAsync(Request("a (red cat:1.5)"));
        var asText = await pipeline.GenerateAsync(Request("a (red cat:1.5)") with { PromptWeighting = false });
        Assert.NotEqual(weighted.FinalLatents, asText.FinalLatents);
        var again = await pipeline.GenerateAsync(Request("a (red cat:1.5)"));
        Assert.Equal(weighted.FinalLatents, again.FinalLatents);
        Assert.Equal(1, pipeline.PromptCacheHits);
    }
}
