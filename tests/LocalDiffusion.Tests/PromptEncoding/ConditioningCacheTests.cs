using LocalDiffusion.Pipeline;
namespace LocalDiffusion.Tests.PromptEncoding;

/// <summary>
/// PipelineOptions.PromptCacheEntries: a repeated prompt skips the text encoders, and every picture is bit-identical to
/// one made without the cache (latents compared exactly), including the warnings encoding gives and SDXL's size-dependent
/// time ids, which must not be served from another size's entry.
/// </summary>
public sealed class ConditioningCacheTests
{
    private static string Model(string name) => Path.Combine(TestPaths.ModelsDir, "test", name);

    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-sdxl")]
    [InlineData("tiny-lcm")]
    public async Task A_repeated_prompt_is_served_from_the_cache_and_gives_the_same_latents(string model)
    {
        using var cached = StableDiffusionPipeline.Load(Model(model), new PipelineOptions { Device = "cpu", PromptCacheEntries = 2 });
        using var plain = StableDiffusionPipeline.Load(Model(model), new PipelineOptions { Device = "cpu" });
        var longPrompt = string.Join(' ', Enumerable.Repeat("red circle", 60)); // over 75 tokens: a truncation warning
        GenerationRequest Request(string prompt, long seed, int size = 64) => new()
        {
            Prompt = prompt, NegativePrompt = "blue", Seed = seed, Steps = 3, Width = size, Height = size, PromptWeighting = false,
        };
        var requests = new[] { Request("a red circle", 1), Request("a red circle", 2), Request(longPrompt, 3), Request(longPrompt, 4), Request("a red circle", 5, 128) };
        foreach (var request in requests)
        {
            var a = await cached.GenerateAsync(request);
            var b = await plain.GenerateAsync(request);
            Assert.Equal(b.FinalLatents, a.FinalLatents);
            Assert.Equal(b.Warnings, a.Warnings);
        }
        // Hits: seed 2 and seed 4 (same prompts as before); the 128² SDXL request has other time ids, and for the others
        // the 2-entry cache still holds "a red circle" at 64².
        Assert.Equal(model == "tiny-sdxl" ? 2 : 3, cached.PromptCacheHits);
    }

    [Fact]
    public void A_negative_size_is_refused_naming_the_option()
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => StableDiffusionPipeline.Load(Model("tiny"), new PipelineOptions { Device = "cpu", PromptCacheEntries = -1 }));
        Assert.Equal("PromptCacheEntries", e.ParamName);
    }
}
