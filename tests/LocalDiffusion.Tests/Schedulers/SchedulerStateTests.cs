using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

public class SchedulerStateTests
{
    private static readonly SchedulerConfig Sd15 = SchedulerConfig.Default with
    {
        BetaSchedule = BetaSchedule.ScaledLinear, BetaStart = 0.00085, BetaEnd = 0.012,
        SetAlphaToOne = false, SkipPrkSteps = true, StepsOffset = 1,
    };

    public static TheoryData<string> Ids => [.. new SchedulerRegistry().All.Select(i => i.Id)];

    private static float[] Run(IScheduler scheduler, int steps, long seed)
    {
        scheduler.SetTimesteps(steps);
        return DiffusersReference.Sample(scheduler, new TorchGenerator(seed));
    }

    [Theory]
    [MemberData(nameof(Ids))]
    public void SetTimestepsAgainResetsTheState(string id)
    {
        var reused = new SchedulerRegistry().Create(id, Sd15);
        Run(reused, 7, seed: 3);
        var second = Run(reused, 12, seed: 5);
        var fresh = Run(new SchedulerRegistry().Create(id, Sd15), 12, seed: 5);
        Assert.Equal(fresh, second);
    }

    [Theory]
    [MemberData(nameof(Ids))]
    public void SamplingBeforeSetTimestepsIsAnError(string id)
    {
        var scheduler = new SchedulerRegistry().Create(id, Sd15);
        var error = Assert.Throws<InvalidOperationException>(() => scheduler.Timesteps);
        Assert.Contains("SetTimesteps", error.Message);
    }

    [Theory]
    [InlineData("pndm")]
    [InlineData("lms")]
    [InlineData("dpmpp_2m")]
    [InlineData("heun")]
    [InlineData("dpm2")]
    [InlineData("dpm2_a")]
    [InlineData("unipc")]
    [InlineData("deis")]
    [InlineData("dpmpp_2s")]
    public void MultistepSchedulersRejectStepsOutOfOrder(string id)
    {
        var scheduler = new SchedulerRegistry().Create(id, Sd15);
        scheduler.SetTimesteps(10);
        var sample = new float[64];
        var error = Assert.Throws<InvalidOperationException>(() => scheduler.Step(new float[64], 1, sample, new TorchGenerator(0)));
        Assert.Contains("Step(1)", error.Message);
    }

    [Fact]
    public void ClassDefaultsDifferPerClass()
    {
        var empty = SchedulerConfig.Default;
        // DDIM's defaults: linear betas 0.0001 → 0.02, clip_sample true, set_alpha_to_one true.
        Assert.Equal(
            Run(new DdimScheduler(empty with { BetaSchedule = BetaSchedule.Linear, BetaStart = 0.0001, BetaEnd = 0.02, ClipSample = true, SetAlphaToOne = true }), 10, 0),
            Run(new DdimScheduler(empty), 10, 0));
        Assert.NotEqual(Run(new DdimScheduler(empty with { ClipSample = false }), 10, 0), Run(new DdimScheduler(empty), 10, 0));

        // PNDM defaults to Runge–Kutta warm-up: 12 PRK evaluations + n − 3 PLMS ones; leading spacing without offset.
        var pndm = new PndmScheduler(empty);
        pndm.SetTimesteps(10);
        Assert.Equal(19, pndm.Timesteps.Count);
        // Euler defaults to linspace spacing (fractional timesteps from 999), DPM-Solver to linspace without t = 0.
        var euler = new EulerDiscreteScheduler(empty);
        euler.SetTimesteps(10);
        Assert.Equal(999f, euler.Timesteps[0]);
        Assert.Equal(888f, euler.Timesteps[1]);
        var dpm = new DpmSolverMultistepScheduler(empty);
        dpm.SetTimesteps(10);
        Assert.Equal(999f, dpm.Timesteps[0]);
        Assert.Equal(100f, dpm.Timesteps[^1]);
        // Same config, different classes: leading spacing with steps_offset 1 only where the config says so.
        var ddimSd = new DdimScheduler(Sd15);
        ddimSd.SetTimesteps(10);
        Assert.Equal(901f, ddimSd.Timesteps[0]);
    }

    [Fact]
    public void UnsupportedOptionsAreRejectedClearly()
    {
        Assert.Throws<NotSupportedException>(() => new PndmScheduler(Sd15 with { PredictionType = PredictionType.Sample }));
        Assert.Throws<NotSupportedException>(() => new EulerAncestralDiscreteScheduler(Sd15 with { PredictionType = PredictionType.Sample }));
        Assert.Throws<NotSupportedException>(() => new DpmSolverMultistepScheduler(Sd15 with { UseLuLambdas = true }));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new EulerDiscreteScheduler(Sd15 with { UseKarrasSigmas = true, UseExponentialSigmas = true }));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new DpmSolverMultistepScheduler(Sd15 with { AlgorithmType = DpmSolverAlgorithmType.DpmSolver }));
        Assert.Throws<NotSupportedException>(() => new DdimScheduler(Sd15 with { Thresholding = true }));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new EulerDiscreteScheduler(Sd15).SetTimesteps(0));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new PndmScheduler(Sd15 with { SkipPrkSteps = false }).SetTimesteps(3));
    }

    [Fact]
    public void DpmSolverRunsDeisAndUniPcSettingsAsDiffusersDoes()
    {
        // diffusers' DPMSolverMultistepScheduler turns algorithm_type "deis" into dpmsolver++ and solver_type bh1/bh2/logrho into midpoint.
        var foreign = Run(new DpmSolverMultistepScheduler(Sd15 with { AlgorithmType = DpmSolverAlgorithmType.Deis, SolverType = DpmSolverType.Bh2 }), 10, 0);
        Assert.Equal(Run(new DpmSolverMultistepScheduler(Sd15), 10, 0), foreign);
        Assert.Equal(DpmSolverType.Bh2, SchedulerConfig.Parse("""{"solver_type": "bh2"}""").SolverType);
    }
}
