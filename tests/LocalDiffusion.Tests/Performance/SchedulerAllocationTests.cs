using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Performance;

/// <summary>
/// Schedulers allocate nothing per step once warm: every buffer they need is owned by the instance and reused
/// from one generation to the next (issue 12, "no waste in the loop").
/// </summary>
public class SchedulerAllocationTests
{
    // SD 1.5's scheduler config; latents of one 512×512 image, [1,4,64,64], so a per-step buffer would show as ≥ 64 KB.
    private static readonly SchedulerConfig Sd15 = SchedulerConfig.Default with
    {
        BetaSchedule = BetaSchedule.ScaledLinear, BetaStart = 0.00085, BetaEnd = 0.012,
        SetAlphaToOne = false, SkipPrkSteps = true, StepsOffset = 1,
    };

    private const int Latents = 4 * 64 * 64;
    private const int Steps = 12;

    public static TheoryData<string> Ids => [.. new SchedulerRegistry().All.Select(i => i.Id)];

    [Theory]
    [MemberData(nameof(Ids))]
    public void AWarmSchedulerStepAllocatesNothing(string id) => AssertNoStepAllocates(id, new SchedulerRegistry().Create(id, Sd15));

    // PNDM's Runge–Kutta warm-up and v-prediction take other paths through its buffers.
    [Theory]
    [InlineData(false, PredictionType.Epsilon)]
    [InlineData(false, PredictionType.VPrediction)]
    [InlineData(true, PredictionType.VPrediction)]
    public void PndmVariantsAllocateNothingPerStep(bool skipPrk, PredictionType prediction) =>
        AssertNoStepAllocates($"pndm skip_prk_steps={skipPrk} {prediction}", new PndmScheduler(Sd15 with { SkipPrkSteps = skipPrk, PredictionType = prediction }));

    private static void AssertNoStepAllocates(string id, IScheduler scheduler)
    {
        var sample = new float[Latents];
        var input = new float[Latents];
        var output = new float[Latents];
        var generator = new TorchGenerator(1);

        Sample(scheduler, sample, input, output, generator); // warm-up: buffers sized, code jitted
        // Three new runs of the same size. A buffer made per step shows in every run; the runtime itself (tiered JIT
        // under a loaded machine) was seen to allocate once in a while on the test thread, so one clean run suffices.
        var runs = new long[3];
        for (var r = 0; r < runs.Length; r++)
        {
            scheduler.SetTimesteps(Steps);
            var evaluations = scheduler.Timesteps.Count;
            var before = GC.GetAllocatedBytesForCurrentThread();
            Steps_(scheduler, sample, input, output, generator, evaluations);
            runs[r] = GC.GetAllocatedBytesForCurrentThread() - before;
            if (runs[r] == 0) return;
        }
        Assert.Fail($"{id}: every run allocated ({string.Join(", ", runs)} bytes over {scheduler.Timesteps.Count} evaluations each).");
    }

    private static void Sample(IScheduler scheduler, float[] sample, float[] input, float[] output, TorchGenerator generator)
    {
        scheduler.SetTimesteps(Steps);
        Steps_(scheduler, sample, input, output, generator, scheduler.Timesteps.Count);
    }

    // A stand-in model output that depends on the input, so multistep histories hold different values.
    private static void Steps_(IScheduler scheduler, float[] sample, float[] input, float[] output, TorchGenerator generator, int evaluations)
    {
        Array.Fill(sample, 0.5f);
        for (var i = 0; i < evaluations; i++)
        {
            scheduler.ScaleModelInput(sample, input, i);
            System.Numerics.Tensors.TensorPrimitives.Multiply(input, 0.1f, output);
            scheduler.Step(output, i, sample, generator);
        }
    }
}
