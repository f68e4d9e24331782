using LocalDiffusion.Pipeline;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>
/// <see cref="StableDiffusionPipeline.GenerateBatchAsync"/>: compatible requests share one UNet call per step, and each
/// request's images and final latents are bit for bit those it gets alone through <see cref="StableDiffusionPipeline.GenerateAsync"/>
/// (the reference here is the engine's own single-request path, which the diffusers parity tests hold to diffusers).
/// Exact equality holds whenever the request alone makes a UNet call of two or more rows (with classifier-free guidance
/// always): a row's arithmetic does not depend on how many rows share the call. A call of ONE row (no guidance and
/// ImageCount 1: LCM, Turbo, guidance ≤ 1) is the exception, and only with the engine's CPU default of weight
/// prepacking off (<see cref="PipelineOptions.PrepackWeights"/> false, <c>session.disable_prepacking=1</c>): found on
/// 2 December 2026 by running tiny's UNet through ONNX Runtime directly, the same row at batch 1 and batch 2 differs by
/// 1.1e-6 with prepacking off and is identical with it on (memory pattern, graph optimisation level and threads change
/// nothing; Gemm, MatMul and Conv alone at batch 1 vs 2 are identical): MLAS multiplies a single row by unpacked
/// weights in another order. Measured through the pipeline: at most 2.9e-6 on tiny-lcm and 4.6e-6 on tiny at guidance
/// 1, on final latents of magnitude 2.9 (≈ 2e-6 relative) after 4 steps; batch 2 vs any larger batch is identical.
/// Those requests are compared within <see cref="OneRowTolerance"/> of the latents' scale and their pixels within one
/// level; with prepacking on they are compared exactly.
/// </summary>
public class BatchGenerationTests
{
    /// <summary>Relative to the largest |latent|: 5× the largest difference measured (above).</summary>
    private const float OneRowTolerance = 1e-5f;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // Different prompts, negative prompts, seeds, guidance scales and image counts: only what the UNet call shares is equal.
    private static GenerationRequest[] Requests(string scheduler) =>
    [
        TestModels.Request("a red circle on a blue background", seed: 1) with { Scheduler = scheduler, GuidanceScale = 7.5f },
        TestModels.Request("two squares, one green and one yellow", seed: 2) with { Scheduler = scheduler, GuidanceScale = 3f, NegativePrompt = "blurry", ImageCount = 2 },
        TestModels.Request("a (black:1.3) cross on the right", seed: 3) with { Scheduler = scheduler, GuidanceScale = 12f },
    ];

    [Theory]
    [InlineData("tiny", "dpmpp_2m")]
    [InlineData("tiny", "euler_a")]
    [InlineData("tiny", "dpmpp_2m_sde")]
    [InlineData("tiny", "heun")]
    [InlineData("tiny-fp16", "ddim")]
    [InlineData("tiny-static", "euler_a")]
    [InlineData("tiny-sdxl", "euler_a")]
    [InlineData("tiny-lcm", "lcm")]
    public async Task EachBatchedRequestGetsExactlyItsResultAlone(string variant, string scheduler)
    {
        var pipeline = TestModels.Pipeline(variant);
        var requests = Requests(scheduler);
        Assert.True(pipeline.CanBatch(requests[0], requests[1]) && pipeline.CanBatch(requests[0], requests[2]));
        var progress = requests.Select(_ => new Recorded()).ToArray();

        var batched = await Task.WhenAll(pipeline.GenerateBatchAsync(
            requests.Select((r, i) => new GenerationBatchItem(r, progress[i], Token)).ToList()));

        for (var i = 0; i < requests.Length; i++)
        {
            var alone = await pipeline.GenerateAsync(requests[i], cancellationToken: Token);
            Assert.Equal(3, batched[i].BatchSize);
            Assert.Equal(1, alone.BatchSize);
            Assert.Equal(alone.Seed, batched[i].Seed);
            Assert.Equal(requests[i].ImageCount, batched[i].Images.Count);
            var oneRowAlone = requests[i].ImageCount == 1 && !pipeline.Info.Family.UsesClassifierFreeGuidance(pipeline.WithDefaults(requests[i]).GuidanceScale!.Value);
            AssertSame(alone, batched[i], oneRowAlone);
            Assert.Equal(alone.UnetEvaluations, batched[i].UnetEvaluations);
            // Each request's own progress: every evaluation once, in order, then decoding and done.
            var steps = progress[i].Events.Where(p => p.Phase == GenerationPhase.Denoising).Select(p => p.Step);
            Assert.Equal(Enumerable.Range(1, alone.UnetEvaluations), steps);
            Assert.Equal(GenerationPhase.Done, progress[i].Events[^1].Phase);
        }
        // A static batch of 1 runs every row as its own call: 2 rows per image with guidance (LCM: 1).
        if (variant == "tiny-static")
            Assert.Equal(batched[0].UnetEvaluations * 2 * 4, batched[0].UnetCalls);
    }

    [Fact]
    public async Task SdxlMicroConditioningStaysPerRequest()
    {
        // Each request's time_ids (its own original and target sizes) are its own rows of the batch.
        var pipeline = TestModels.Pipeline("tiny-sdxl");
        GenerationRequest[] requests =
        [
            TestModels.Request(seed: 1) with { OriginalSize = new PixelSize(512, 256) },
            TestModels.Request(seed: 2) with { TargetSize = new PixelSize(128, 128), NegativeOriginalSize = new PixelSize(64, 64) },
            TestModels.Request(seed: 3),
        ];
        var batched = await Task.WhenAll(pipeline.GenerateBatchAsync(requests.Select(r => new GenerationBatchItem(r, null, Token)).ToList()));
        for (var i = 0; i < requests.Length; i++)
        {
            Assert.Equal(3, batched[i].BatchSize);
            AssertSame(await pipeline.GenerateAsync(requests[i], cancellationToken: Token), batched[i], oneRowAlone: false);
        }
        Assert.NotEqual(batched[0].FinalLatents, (await pipeline.GenerateAsync(requests[0] with { OriginalSize = null }, cancellationToken: Token)).FinalLatents);
    }

    [Fact]
    public async Task WithPrepackedWeightsEvenOneRowRequestsAreExact()
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-lcm"), new PipelineOptions { Device = "cpu", PrepackWeights = true });
        var requests = Requests("lcm");
        var batched = await Task.WhenAll(pipeline.GenerateBatchAsync(requests.Select(r => new GenerationBatchItem(r, null, Token)).ToList()));
        for (var i = 0; i < requests.Length; i++)
            AssertSame(await pipeline.GenerateAsync(requests[i], cancellationToken: Token), batched[i], oneRowAlone: false);
    }

    [Fact]
    public async Task ACancelledMemberEndsAloneAndTheOthersGoOn()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var requests = Requests("euler_a").Select(r => r with { Steps = 8 }).ToArray();
        using var cancel = new CancellationTokenSource();
        var cancelAtStep = new Recorded(p => { if (p.Step == 3 && p.Phase == GenerationPhase.Denoising) cancel.Cancel(); });

        var tasks = pipeline.GenerateBatchAsync([
            new(requests[0], null, Token),
            new(requests[1], cancelAtStep, cancel.Token),
            new(requests[2], null, Token),
        ]);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => tasks[1]);
        Assert.True(tasks[1].IsCanceled);
        Assert.DoesNotContain(cancelAtStep.Events, p => p.Step > 3);
        foreach (var i in new[] { 0, 2 })
        {
            var alone = await pipeline.GenerateAsync(requests[i], cancellationToken: Token);
            Assert.Equal(alone.FinalLatents, (await tasks[i]).FinalLatents);
        }
    }

    [Fact]
    public async Task WhenEveryMemberIsCancelledAllEnd()
    {
        var pipeline = TestModels.Pipeline("tiny");
        using var cancel = new CancellationTokenSource();
        var cancelAtStep = new Recorded(p => { if (p.Step == 2) cancel.Cancel(); });
        var requests = Requests("dpmpp_2m").Select(r => r with { Steps = 8 }).ToArray();
        var tasks = pipeline.GenerateBatchAsync(requests.Select((r, i) => new GenerationBatchItem(r, i == 0 ? cancelAtStep : null, cancel.Token)).ToList());
        foreach (var t in tasks)
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => t);
        // An already-cancelled token ends its request before any work.
        var before = pipeline.GenerateBatchAsync([new(requests[0], null, cancel.Token)]);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => before[0]);
    }

    [Fact]
    public async Task IncompatibleRequestsRunSeparatelyWithTheirOwnResults()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var basic = TestModels.Request(seed: 5) with { Scheduler = "dpmpp_2m" };
        var init = (await pipeline.GenerateAsync(basic, cancellationToken: Token)).Images[0];
        GenerationRequest[] others =
        [
            basic with { Width = 128 },                          // another size
            basic with { Steps = 5 },                            // other timesteps
            basic with { Scheduler = "ddim" },                   // other timesteps (leading spacing vs linspace)
            basic with { GuidanceScale = 1f },                   // no classifier-free guidance: one row per image
            basic with { InitImage = InitImage.FromImage(init) }, // img2img runs alone
        ];
        foreach (var other in others) Assert.False(pipeline.CanBatch(basic, other), other.ToString());
        Assert.False(pipeline.CanBatch(basic, basic with { Steps = 0 }));   // invalid: never batched
        Assert.True(pipeline.CanBatch(basic, basic with { Scheduler = "euler_a", Seed = 9 } with { Scheduler = "dpmpp_2m_sde" }));

        var tasks = pipeline.GenerateBatchAsync([new(basic, null, Token), .. others.Select(o => new GenerationBatchItem(o, null, Token))]);
        var results = await Task.WhenAll(tasks);
        GenerationRequest[] all = [basic, .. others];
        for (var i = 0; i < all.Length; i++)
        {
            Assert.Equal(1, results[i].BatchSize);
            Assert.Equal((await pipeline.GenerateAsync(all[i], cancellationToken: Token)).FinalLatents, results[i].FinalLatents);
        }
    }

    [Fact]
    public async Task PromptsOfDifferentLengthsAreDenoisedInSeparateBatches()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var longPrompt = string.Join(", ", Enumerable.Repeat("a red circle on a blue background", 12)); // > 75 tokens: two chunks
        var requests = new[] { TestModels.Request(seed: 1), TestModels.Request(longPrompt, seed: 2), TestModels.Request(seed: 3) };
        var results = await Task.WhenAll(pipeline.GenerateBatchAsync(requests.Select(r => new GenerationBatchItem(r, null, Token)).ToList()));
        Assert.Equal([2, 1, 2], results.Select(r => r.BatchSize));
        for (var i = 0; i < requests.Length; i++)
            Assert.Equal((await pipeline.GenerateAsync(requests[i], cancellationToken: Token)).FinalLatents, results[i].FinalLatents);
    }

    [Fact]
    public async Task ABadRequestFailsAloneNamingItsField()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var tasks = pipeline.GenerateBatchAsync([new(TestModels.Request(), null, Token), new(TestModels.Request() with { Steps = 0 }, null, Token)]);
        var error = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => tasks[1]);
        Assert.Equal(nameof(GenerationRequest.Steps), error.ParamName);
        Assert.Single((await tasks[0]).Images);
    }

    private static void AssertSame(GenerationResult alone, GenerationResult batched, bool oneRowAlone)
    {
        if (!oneRowAlone)
        {
            Assert.Equal(alone.FinalLatents, batched.FinalLatents);
            for (var k = 0; k < alone.Images.Count; k++)
                Assert.Equal(alone.Images[k].Rgb, batched.Images[k].Rgb);
            return;
        }
        var scale = alone.FinalLatents.Max(MathF.Abs);
        var worst = alone.FinalLatents.Zip(batched.FinalLatents, (a, b) => MathF.Abs(a - b)).Max();
        Assert.True(worst <= OneRowTolerance * scale, $"final latents differ by {worst} (scale {scale}, tolerance {OneRowTolerance} of it)");
        for (var k = 0; k < alone.Images.Count; k++)
            Assert.True(alone.Images[k].Rgb.Zip(batched.Images[k].Rgb, (a, b) => Math.Abs(a - b)).Max() <= 1, "pixels differ by more than one level");
    }

    /// <summary>Records progress on the generation's thread, in order (Progress&lt;T&gt; would post to the pool).</summary>
    private sealed class Recorded(Action<GenerationProgress>? then = null) : IProgress<GenerationProgress>
    {
        public List<GenerationProgress> Events { get; } = [];

        public void Report(GenerationProgress value)
        {
            Events.Add(value);
            then?.Invoke(value);
        }
    }
}
