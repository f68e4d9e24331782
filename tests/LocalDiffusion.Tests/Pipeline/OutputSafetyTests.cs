namespace LocalDiffusion.Tests.Pipeline;

/// <summary>What the user must be told rather than silently given: overflow, truncation, interrupted runs.</summary>
public class OutputSafetyTests
{
    [Fact]
    public async Task Float16OverflowIsAnErrorNotABlackImage()
    {
        // Latents far beyond float16's range (65504) become ±Inf in the fp16 model and NaN in the VAE's output:
        // the way an fp16 VAE overflows on real models.
        var noise = new LocalDiffusion.Randomness.TorchGenerator(1).Normal(4 * 8 * 8);
        for (var i = 0; i < noise.Length; i++) noise[i] *= 1e6f;
        var request = TestModels.Request() with { InitialLatents = noise, Steps = 1, Scheduler = "ddim" };

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => TestModels.Pipeline("tiny-fp16").GenerateAsync(request));
        Assert.Contains("NaN/Inf", e.Message);
        Assert.Contains("vae_decoder", e.Message);
    }

    [Fact]
    public async Task ALongPromptIsTruncatedWithAWarningThatCountsTheDroppedTokens()
    {
        var tokenizer = LocalDiffusion.Tokenizer.ClipTokenizer.Load(Path.Combine(TestModels.PathOf("tiny"), "tokenizer"));
        var prompt = string.Join(" ", Enumerable.Repeat("red circle", 60));
        var dropped = tokenizer.Encode(prompt).TruncatedTokens;
        Assert.True(dropped > 0);

        var result = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request(prompt) with { Steps = 1 });

        var warning = Assert.Single(result.Warnings);
        Assert.Contains("longer than 75 tokens", warning);
        Assert.Contains($"the last {dropped} token(s) were dropped", warning);
    }

    [Fact]
    public async Task CancellingInterruptsARunningUnetCall()
    {
        // One UNet call on 512x512 latents takes over a second even for the tiny model; cancelling inside it must
        // abort the ONNX Runtime call (RunOptions.Terminate), so no step is ever completed. The cancel comes from a
        // dedicated thread started once encoding begins: a thread-pool timer can be late by seconds when parallel
        // tests keep the pool busy, and would then cancel only after the UNet call had finished.
        var pipeline = TestModels.Pipeline("tiny");
        var request = TestModels.Request() with { Width = 4096, Height = 4096, Steps = 1, GuidanceScale = 1f, Scheduler = "ddim" };
        var steps = 0;
        using var cts = new CancellationTokenSource();
        var canceller = new Thread(() => { Thread.Sleep(150); cts.Cancel(); }) { IsBackground = true };
        var progress = new SyncProgress<GenerationProgress>(p =>
        {
            if (p.Phase == GenerationPhase.Encoding) canceller.Start();
            if (p.Phase == GenerationPhase.Denoising) steps++;
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.GenerateAsync(request, progress, cts.Token));
        Assert.Equal(0, steps);
    }
}
