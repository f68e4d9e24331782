namespace LocalDiffusion.Tests.PromptEncoding;

/// <summary>Prompt weighting and chunking through the whole pipeline.</summary>
public class PromptWeightingPipelineTests
{
    [Fact]
    public async Task ALongPromptRunsWholeOnADynamicSequenceUnet()
    {
        var prompt = string.Join(" ", Enumerable.Repeat("red circle", 60));
        var result = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request(prompt) with { Steps = 2 });
        Assert.Empty(result.Warnings);
        Assert.Single(result.Images);
    }

    [Fact]
    public async Task PlainPromptsGiveTheSameImageWithAndWithoutWeighting()
    {
        var on = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { Steps = 2 });
        var off = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { Steps = 2, PromptWeighting = false });
        Assert.Equal(off.FinalLatents, on.FinalLatents);
    }

    [Fact]
    public async Task WeightsChangeTheImageUnlessWeightingIsOff()
    {
        var plain = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request("a red circle") with { Steps = 2 });
        var weighted = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request("a (red:1.5) circle") with { Steps = 2 });
        Assert.NotEqual(plain.FinalLatents, weighted.FinalLatents);
    }

    [Fact]
    public async Task AnUnreadableWeightIsRefusedBeforeWork()
    {
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() =>
            TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { NegativePrompt = "(blurry:1..2)" }));
        Assert.Equal("NegativePrompt", e.ParamName);
        // The same text is fine as plain text.
        await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { NegativePrompt = "(blurry:1..2)", Steps = 1, PromptWeighting = false });
    }
}
