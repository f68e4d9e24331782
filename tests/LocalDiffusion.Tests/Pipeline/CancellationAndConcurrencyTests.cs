using LocalDiffusion.Pipeline;
namespace LocalDiffusion.Tests.Pipeline;

public class CancellationAndConcurrencyTests
{
    [Fact]
    public async Task CancellingStopsBetweenSteps()
    {
        using var cts = new CancellationTokenSource();
        var evaluations = 0;
        var progress = new SyncProgress<GenerationProgress>(p =>
        {
            if (p.Phase == GenerationPhase.Denoising && ++evaluations == 2) cts.Cancel();
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { Steps = 50 }, progress, cts.Token));
        Assert.Equal(2, evaluations);
    }

    [Fact]
    public async Task AnAlreadyCancelledTokenDoesNoWork()
    {
        var reports = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => TestModels.Pipeline("tiny").GenerateAsync(
            TestModels.Request(), new SyncProgress<GenerationProgress>(_ => reports++), new CancellationToken(canceled: true)));
        Assert.True(reports <= 1, "no denoising step ran");
    }

    [Fact]
    public async Task ParallelGenerationsOnOnePipelineMatchSequentialOnes()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var ct = TestContext.Current.CancellationToken;
        var seeds = new long[] { 1, 2, 3, 4, 5, 6 };
        var sequential = new List<float[]>();
        foreach (var seed in seeds)
            sequential.Add((await pipeline.GenerateAsync(TestModels.Request(seed: seed) with { Scheduler = "euler_a" }, cancellationToken: ct)).FinalLatents);

        var parallel = await Task.WhenAll(seeds.Select(seed =>
            pipeline.GenerateAsync(TestModels.Request(seed: seed) with { Scheduler = "euler_a" }, cancellationToken: ct)));

        for (var i = 0; i < seeds.Length; i++)
            Assert.Equal(sequential[i], parallel[i].FinalLatents);
    }

    [Fact]
    public async Task DisposeCancelsGenerationsInFlightAndRefusesNewOnes()
    {
        var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cpu" });
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var disposing = false;
        // The first step waits until Dispose is about to start, and later ones are slowed down, so the generation
        // cannot finish first however the threads are scheduled.
        var running = pipeline.GenerateAsync(TestModels.Request() with { Steps = 500 }, new SyncProgress<GenerationProgress>(p =>
        {
            if (p.Phase != GenerationPhase.Denoising) return;
            if (p.Step == 1)
            {
                started.TrySetResult();
                SpinWait.SpinUntil(() => Volatile.Read(ref disposing), TimeSpan.FromSeconds(30));
            }
            Thread.Sleep(5);
        }));
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Volatile.Write(ref disposing, true);
        pipeline.Dispose();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.Throws<ObjectDisposedException>(() => { _ = pipeline.GenerateAsync(TestModels.Request()); });
    }

    [Fact]
    public async Task DisposeFromInsideAGenerationIsRefusedInsteadOfDeadlocking()
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cpu" });
        Exception? thrown = null;
        var progress = new SyncProgress<GenerationProgress>(p =>
        {
            if (p.Step != 1 || thrown is not null) return;
            try { pipeline.Dispose(); } catch (InvalidOperationException e) { thrown = e; }
        });

        await pipeline.GenerateAsync(TestModels.Request(), progress);

        Assert.NotNull(thrown);
        Assert.Contains("inside a generation", thrown.Message);
    }
}
