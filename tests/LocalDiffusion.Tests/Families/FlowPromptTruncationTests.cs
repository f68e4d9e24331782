using LocalDiffusion.Pipeline;

namespace LocalDiffusion.Tests.Families;

/// <summary>
/// A prompt longer than the T5 sequence or CLIP's 77-token window is cut, as diffusers' pipelines cut it
/// (max_sequence_length − 1 pieces and EOS; 75 CLIP tokens between BOS and EOS), and, as diffusers logs, the user is told:
/// a warning names the prompt, the encoder, its length there and the limit. A prompt that fits gets none. Models: the tiny
/// SD 3 and FLUX.1-schnell test models (their T5 tokenizer's pieces; their CLIP tokenizers, whose 77-token window
/// tokenizer_config.json gives and whose vocab.json has "red&lt;/w&gt;" (645) and "cat&lt;/w&gt;" (922) as one token each).
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

    [Theory]
    [InlineData("tiny-sd3", "SD 3's CLIP encoders (text_encoder, text_encoder_2)")]
    [InlineData("tiny-flux-schnell", "FLUX.1-schnell's CLIP encoder (text_encoder)")]
    public async Task A_prompt_past_the_clip_window_is_cut_with_a_warning(string model, string encoders)
    {
        var token = TestContext.Current.CancellationToken;
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf(model), new PipelineOptions { Device = "cpu" });
        // 40 × "red cat": 80 CLIP tokens, 5 past the window.
        var eighty = string.Join(' ', Enumerable.Repeat("red cat", 40));
        var request = new GenerationRequest { Prompt = eighty, Width = 64, Height = 48, Steps = 1, Seed = 1, PromptWeighting = false };
        var expected = $"The prompt is 80 CLIP tokens; {encoders} read the first 75 (a 77-token window with BOS and EOS) and cut the rest.";

        var plain = await pipeline.GenerateAsync(request, cancellationToken: token);
        Assert.Equal(expected, Assert.Single(plain.Warnings, w => w.Contains("CLIP tokens", StringComparison.Ordinal)));

        // Weighted, the runs are chunked (A1111's way); the tokens past the first chunk are the ones cut, and counted.
        var weighted = await pipeline.GenerateAsync(request with { Prompt = "(red:1.2) cat " + string.Join(' ', Enumerable.Repeat("red cat", 39)), PromptWeighting = true }, cancellationToken: token);
        Assert.Equal(expected, Assert.Single(weighted.Warnings, w => w.Contains("CLIP tokens", StringComparison.Ordinal)));

        // 75 tokens fill the window exactly: nothing is cut.
        var fits = await pipeline.GenerateAsync(request with { Prompt = string.Join(' ', Enumerable.Repeat("red", 75)) }, cancellationToken: token);
        Assert.DoesNotContain(fits.Warnings, w => w.Contains("CLIP tokens", StringComparison.Ordinal));
    }
}
