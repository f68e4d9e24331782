using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

/// <summary>The registry entries of the samplers added after the first seven, and the options each class rejects.</summary>
public class MoreSchedulersRegistryTests
{
    private static readonly SchedulerConfig Sd15 = SchedulerConfig.Parse(
        """{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1, "set_alpha_to_one": false}""");

    [Fact]
    public void NewEntriesFollowTheFirstSevenWithTheirNamesAndClasses()
    {
        // (id, display name, diffusers class, stochastic): appended after pndm … dpmpp_2m_karras.
        (string, string, string, bool)[] expected =
        [
            ("heun", "Heun", "HeunDiscreteScheduler", false),
            ("dpm2", "DPM2", "KDPM2DiscreteScheduler", false),
            ("dpm2_karras", "DPM2 Karras", "KDPM2DiscreteScheduler", false),
            ("dpm2_a", "DPM2 a", "KDPM2AncestralDiscreteScheduler", true),
            ("dpm2_a_karras", "DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", true),
            ("dpmpp_2m_sde", "DPM++ 2M SDE", "DPMSolverMultistepScheduler", true),
            ("dpmpp_2m_sde_karras", "DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", true),
            ("euler_exponential", "Euler Exponential", "EulerDiscreteScheduler", false),
            ("euler_beta", "Euler Beta", "EulerDiscreteScheduler", false),
            ("euler_karras", "Euler Karras", "EulerDiscreteScheduler", false),
            ("heun_karras", "Heun Karras", "HeunDiscreteScheduler", false),
            ("lms_karras", "LMS Karras", "LMSDiscreteScheduler", false),
            ("ddpm", "DDPM", "DDPMScheduler", true),
            ("dpmpp_3m_sde", "DPM++ 3M SDE", "DPMSolverMultistepScheduler", true),
            ("dpmpp_3m_sde_karras", "DPM++ 3M SDE Karras", "DPMSolverMultistepScheduler", true),
            ("dpmpp_2m_exponential", "DPM++ 2M Exponential", "DPMSolverMultistepScheduler", false),
            ("dpmpp_2m_beta", "DPM++ 2M Beta", "DPMSolverMultistepScheduler", false),
            ("unipc", "UniPC", "UniPCMultistepScheduler", false),
            ("deis", "DEIS", "DEISMultistepScheduler", false),
            ("dpmpp_2s", "DPM++ 2S", "DPMSolverSinglestepScheduler", false),
            ("dpmpp_2s_karras", "DPM++ 2S Karras", "DPMSolverSinglestepScheduler", false),
            ("dpmpp_2s_a", "DPM++ 2S a", "(k-diffusion sample_dpmpp_2s_ancestral)", true),
            ("dpmpp_2s_a_karras", "DPM++ 2S a Karras", "(k-diffusion sample_dpmpp_2s_ancestral)", true),
            ("dpmpp_sde", "DPM++ SDE", "DPMSolverSinglestepScheduler", true),
            ("dpmpp_sde_karras", "DPM++ SDE Karras", "DPMSolverSinglestepScheduler", true),
            ("lcm", "LCM", "LCMScheduler", true),
            ("tcd", "TCD", "TCDScheduler", true),
            ("flow_euler", "Euler (flow)", "FlowMatchEulerDiscreteScheduler", false),
            ("flow_heun", "Heun (flow)", "FlowMatchHeunDiscreteScheduler", false),
        ];
        var added = new SchedulerRegistry().All.Skip(7).Select(i => (i.Id, i.DisplayName, i.DiffusersClass, i.IsStochastic)).ToArray();
        Assert.Equal(expected, added);
    }

    [Theory]
    [InlineData("DPM2 a", typeof(KDpm2AncestralDiscreteScheduler))]
    [InlineData("DPM++ 2M SDE Karras", typeof(DpmSolverMultistepScheduler))]
    [InlineData("k_heun", typeof(HeunDiscreteScheduler))]
    [InlineData("UniPCMultistepScheduler", typeof(UniPcMultistepScheduler))]
    [InlineData("DEISMultistepScheduler", typeof(DeisMultistepScheduler))]
    [InlineData("DPMSolverSinglestepScheduler", typeof(DpmSolverSinglestepScheduler))]
    [InlineData("KDPM2DiscreteScheduler", typeof(KDpm2DiscreteScheduler))]
    [InlineData("DDPMScheduler", typeof(DdpmScheduler))]
    [InlineData("LCMScheduler", typeof(LcmScheduler))]
    [InlineData("TCDScheduler", typeof(TcdScheduler))]
    public void NamesAndClassNamesResolve(string name, Type type) =>
        Assert.IsType(type, new SchedulerRegistry().Create(name, Sd15));

    [Theory]
    [InlineData("DPM++ 2S a")]
    [InlineData("dpmpp_2s_a")]
    [InlineData("k_dpmpp_2s_a")]
    public void AncestralTwoSNamesAreNotGivenToTheDeterministicSinglestepSolver(string name)
    {
        // diffusers' DPMSolverSinglestep is not AUTOMATIC1111's ancestral "DPM++ 2S a" (k-diffusion's sampler, its own class).
        Assert.IsType<DpmPlusPlus2SAncestralScheduler>(new SchedulerRegistry().Create(name, Sd15));
        Assert.IsType<DpmSolverSinglestepScheduler>(new SchedulerRegistry().Create("DPM++ 2S", Sd15));
    }

    [Fact]
    public void ConfigClassNamePicksThePlainForm()
    {
        var registry = new SchedulerRegistry();
        // A saved KDPM2 config without use_karras_sigmas stays plain: the Karras entry only answers to its own names.
        var plain = registry.CreateFromConfig(Sd15 with { ClassName = "KDPM2DiscreteScheduler" });
        var karras = registry.Create("dpm2_karras", Sd15);
        plain.SetTimesteps(10);
        karras.SetTimesteps(10);
        Assert.NotEqual(((ISigmaSchedule)plain).Sigmas, ((ISigmaSchedule)karras).Sigmas);
    }

    [Fact]
    public void SecondOrderSamplersListOneTimestepPerEvaluation()
    {
        foreach (var id in new[] { "heun", "dpm2", "dpm2_a" })
        {
            var scheduler = new SchedulerRegistry().Create(id, Sd15);
            scheduler.SetTimesteps(10);
            Assert.Equal(19, scheduler.Timesteps.Count);
            Assert.Equal(20, ((ISigmaSchedule)scheduler).Sigmas.Count);
        }
    }

    [Fact]
    public void UnsupportedOptionsAreRejectedClearly()
    {
        Assert.Throws<NotSupportedException>(() => new KDpm2DiscreteScheduler(Sd15 with { PredictionType = PredictionType.Sample }));
        Assert.Throws<NotSupportedException>(() => new KDpm2AncestralDiscreteScheduler(Sd15 with { PredictionType = PredictionType.Sample }));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new HeunDiscreteScheduler(Sd15 with { UseKarrasSigmas = true, UseBetaSigmas = true }));
        var variance = Assert.Throws<NotSupportedException>(() => new DdpmScheduler(Sd15 with { VarianceType = "learned_range" }));
        Assert.Contains("learned_range", variance.Message);
        Assert.Throws<NotSupportedException>(() => new DdpmScheduler(Sd15 with { VarianceType = "fixed_large_log" }));
        Assert.Throws<NotSupportedException>(() => new UniPcMultistepScheduler(Sd15 with { UseExponentialSigmas = true }));
        Assert.Throws<NotSupportedException>(() => new DeisMultistepScheduler(Sd15 with { UseBetaSigmas = true }));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new DeisMultistepScheduler(Sd15 with { SolverOrder = 4 }));
        // An order below 1 is refused up front, naming the key, instead of failing with an index error at the first step.
        Assert.Contains("solver_order 0", Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new DeisMultistepScheduler(Sd15 with { SolverOrder = 0 })).Message);
        Assert.Contains("solver_order 0", Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new UniPcMultistepScheduler(Sd15 with { SolverOrder = 0 })).Message);
        Assert.Contains("solver_order -1", Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new DpmSolverMultistepScheduler(Sd15 with { SolverOrder = -1 })).Message);
        Assert.Contains("solver_order 0", Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new DpmSolverSinglestepScheduler(Sd15 with { SolverOrder = 0 })).Message);
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new DpmSolverSinglestepScheduler(Sd15 with { AlgorithmType = DpmSolverAlgorithmType.SdeDpmSolverPlusPlus, SolverOrder = 3 }));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new DpmSolverSinglestepScheduler(Sd15 with { AlgorithmType = DpmSolverAlgorithmType.DpmSolver }));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new DpmSolverMultistepScheduler(Sd15 with { AlgorithmType = DpmSolverAlgorithmType.SdeDpmSolver, SolverOrder = 3, FinalSigmasType = FinalSigmasType.SigmaMin }));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new TcdScheduler(Sd15, eta: 1.5));
        var lcm = new LcmScheduler(Sd15 with { OriginalInferenceSteps = 20 });
        var tooMany = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => lcm.SetTimesteps(21));
        Assert.Contains("original_inference_steps (20)", tooMany.Message);
    }

    [Fact]
    public void ConfigReadsTheUniPcAndConsistencyKeys()
    {
        var config = SchedulerConfig.Parse(
            """{"predict_x0": false, "disable_corrector": [0, 2], "original_inference_steps": 30, "timestep_scaling": 2.5}""");
        Assert.False(config.PredictX0);
        Assert.Equal([0, 2], config.DisableCorrector);
        Assert.Equal(30, config.OriginalInferenceSteps);
        Assert.Equal(2.5, config.TimestepScaling);
        var wrong = Assert.Throws<InvalidDataException>(() => SchedulerConfig.Parse("""{"disable_corrector": [0.5]}""", "cfg.json"));
        Assert.Contains("cfg.json", wrong.Message);
        Assert.Contains("disable_corrector", wrong.Message);
    }

    [Fact]
    public void TcdWithoutStochasticityDrawsNoNoise()
    {
        // γ = 0 never touches the generator: the generator's next draw is the same as a fresh one's.
        var scheduler = new TcdScheduler(Sd15, eta: 0);
        scheduler.SetTimesteps(4);
        var generator = new TorchGenerator(3);
        var sample = new float[64];
        for (var i = 0; i < scheduler.Timesteps.Count; i++)
            scheduler.Step(new float[64], i, sample, generator);
        var next = new float[64];
        var fresh = new float[64];
        generator.FillNormal(next);
        new TorchGenerator(3).FillNormal(fresh);
        Assert.Equal(fresh, next);
    }
}
