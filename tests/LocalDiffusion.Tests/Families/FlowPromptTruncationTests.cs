using LocalDiffusion.Pipeline;

namespace LocalDiffusion.Tests.Families;

/// <summary>
/// A prompt longer than the T5 sequence is cut, as diffusers' pipelines cut it (max_sequence_length − 1 pieces and EOS),
/// and, as diffusers logs, the user is told: a warning names the prompt, its T5 length and the limit. A prompt that fits
/// gets none. Models: the tiny SD 3 and FLUX.1-schnell test models (their T5 tokenizer's pieces).
/// </summary>
public sealed class FlowPromptTruncationTests
{
    private const string Long = "a red circle and a blue square and a green triangle and a yellow star on a grey background at noon";

    [Theory]
    [InlineData("tiny-sd3")]
    [InlineData("tiny-flux-schnell")]
    public async Task A_prompt_past_the_t5_length_is_cut_with_a_warning(string model)
    {
        var token = TestContext.Current.CancellationToken;
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf(model), new PipelineOptions { Device = "cpu" });
        var request = new GenerationRequest { Prompt = Long, Width = 64, Height = 48, Steps = 1, Seed = 1, MaxSequenceLength = 8 };
        var cut = await pipeline.GenerateAsync(request, cancellationToken: token);
        var warning = Assert.Single(cut.Warnings, w => w.Contains("T5 tokens", StringComparison.Ordinal));
        Assert.StartsWith("The prompt is ", warning, StringComparison.Ordinal);
        Assert.Contains("read the first 7 (MaxSequenceLength 8)", warning, StringComparison.Ordinal);

        var fits = await pipeline.GenerateAsync(request with { Prompt = "a red circle", MaxSequenceLength = 64 }, cancellationToken: token);
        Assert.DoesNotContain(fits.Warnings, w => w.Contains("T5 tokens", StringComparison.Ordinal));
    }
}
