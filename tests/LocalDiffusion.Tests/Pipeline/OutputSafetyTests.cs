using LocalDiffusion.Errors;
using LocalDiffusion.Pipeline;
namespace LocalDiffusion.Tests.Pipeline;

/// <summary>What the user must be told rather than silently given: overflow, truncation, interrupted runs.</summary>
public class OutputSafetyTests
{
    [Fact]
    public async Task Float16OverflowIsAnErrorNotABlackImage()
    {
        // Denoised latents that float32 holds but that exceed float16's range (65504) once divided by the VAE scaling
        // factor become ±Inf inside the fp16 VAE and NaN in its output: the way an fp16 VAE overflows on real models.
        // A scheduler that leaves such latents (finite, so every check before the VAE passes) makes the case here.
        var registry = new LocalDiffusion.Schedulers.SchedulerRegistry();
        registry.Register(new LocalDiffusion.Schedulers.SchedulerInfo("loud", "Loud", "LoudScheduler", Aliases: [], IsStochastic: false), _ => new Loud());
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-fp16"), new PipelineOptions { Device = "cpu", Schedulers = registry });

        var e = await Assert.ThrowsAsync<GenerationNumericsException>(() => pipeline.GenerateAsync(TestModels.Request() with { Steps = 1, Scheduler = "loud" }));
        Assert.Equal(NumericsStage.VaeDecoder, e.Stage);
        Assert.Contains("NaN/infinity", e.Message);
        Assert.Contains("vae_decoder", e.Message);

        var noise = new LocalDiffusion.Randomness.TorchGenerator(1).Normal(4 * 8 * 8);
        for (var i = 0; i < noise.Length; i++) noise[i] *= 1e6f;
        var request = TestModels.Request() with { InitialLatents = noise, Steps = 1, Scheduler = "ddim" };
        // Far beyond float16's range the UNet's own input overflows first, and the error says so.
        var unet = await Assert.ThrowsAsync<GenerationNumericsException>(() => TestModels.Pipeline("tiny-fp16").GenerateAsync(request));
        Assert.Equal(NumericsStage.Unet, unet.Stage);
        Assert.Equal(1, unet.Step);
        Assert.Contains("unet", unet.Message);
    }

    [Fact]
    public async Task ALongPromptIsTruncatedWithAWarningThatCountsTheDroppedTokens()
    {
        var tokenizer = LocalDiffusion.Tokenizer.ClipTokenizer.Load(Path.Combine(TestModels.PathOf("tiny"), "tokenizer"));
        var prompt = string.Join(" ", Enumerable.Repeat("red circle", 60));
        var dropped = tokenizer.Encode(prompt).TruncatedTokens;
        Assert.True(dropped > 0);

        // tiny-static's UNet takes exactly 77 tokens; "tiny" (dynamic) encodes long prompts in chunks instead.
        var result = await TestModels.Pipeline("tiny-static").GenerateAsync(TestModels.Request(prompt) with { Steps = 1 });

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

    /// <summary>One step that leaves latents of ±50 000: finite in float32, beyond float16 after ÷ 0.18215.</summary>
    private sealed class Loud : LocalDiffusion.Schedulers.IScheduler
    {
        public IReadOnlyList<float> Timesteps { get; private set; } = [];

        public float InitNoiseSigma => 1f;

        public void SetTimesteps(int steps) => Timesteps = Enumerable.Range(0, steps).Select(i => 999f - i).ToArray();

        public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int i) => sample.CopyTo(destination);

        public void Step(ReadOnlySpan<float> eps, int i, Span<float> x, LocalDiffusion.Randomness.TorchGenerator generator)
        {
            for (var k = 0; k < x.Length; k++) x[k] = k % 2 == 0 ? 5e4f : -5e4f;
        }
    }
}
