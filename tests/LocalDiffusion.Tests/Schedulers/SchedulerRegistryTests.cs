using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

public class SchedulerRegistryTests
{
    private static readonly SchedulerConfig Sd15 = SchedulerConfig.Default with
    {
        ClassName = "PNDMScheduler", BetaSchedule = BetaSchedule.ScaledLinear, BetaStart = 0.00085, BetaEnd = 0.012,
        SetAlphaToOne = false, SkipPrkSteps = true, StepsOffset = 1,
    };

    [Theory]
    [InlineData("pndm", typeof(PndmScheduler))]
    [InlineData("PLMS", typeof(PndmScheduler))]
    [InlineData("ddim", typeof(DdimScheduler))]
    [InlineData("DDIM", typeof(DdimScheduler))]
    [InlineData("euler", typeof(EulerDiscreteScheduler))]
    [InlineData("Euler", typeof(EulerDiscreteScheduler))]
    [InlineData("euler_a", typeof(EulerAncestralDiscreteScheduler))]
    [InlineData("Euler a", typeof(EulerAncestralDiscreteScheduler))]
    [InlineData("EULER-A", typeof(EulerAncestralDiscreteScheduler))]
    [InlineData("EulerAncestralDiscreteScheduler", typeof(EulerAncestralDiscreteScheduler))]
    [InlineData("lms", typeof(LmsDiscreteScheduler))]
    [InlineData("LMS", typeof(LmsDiscreteScheduler))]
    [InlineData("dpmpp_2m", typeof(DpmSolverMultistepScheduler))]
    [InlineData("DPM++ 2M", typeof(DpmSolverMultistepScheduler))]
    [InlineData("dpm++_2m_karras", typeof(DpmSolverMultistepScheduler))]
    [InlineData("DPM++ 2M Karras", typeof(DpmSolverMultistepScheduler))]
    [InlineData("DPMSolverMultistepScheduler", typeof(DpmSolverMultistepScheduler))]
    public void CreatesByIdDisplayNameOrClassName(string name, Type expected) =>
        Assert.IsType(expected, new SchedulerRegistry().Create(name, Sd15));

    [Fact]
    public void KarrasVariantIsTheClassWithKarrasSigmas()
    {
        var registry = new SchedulerRegistry();
        var variant = (DpmSolverMultistepScheduler)registry.Create("DPM++ 2M Karras", Sd15);
        var explicitKarras = new DpmSolverMultistepScheduler(Sd15 with { UseKarrasSigmas = true });
        var plain = (DpmSolverMultistepScheduler)registry.Create("DPMSolverMultistepScheduler", Sd15);
        foreach (var scheduler in new[] { variant, explicitKarras, plain })
            scheduler.SetTimesteps(20);
        Assert.Equal(explicitKarras.Sigmas, variant.Sigmas);
        Assert.NotEqual(plain.Sigmas, variant.Sigmas);
        Assert.Equal("dpmpp_2m", registry.Describe("DPMSolverMultistepScheduler").Id);
    }

    [Fact]
    public void UnknownNameListsKnownIds()
    {
        var error = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new SchedulerRegistry().Create("Heun++", Sd15));
        Assert.Contains("Heun++", error.Message);
        foreach (var id in new[] { "pndm", "ddim", "euler", "euler_a", "lms", "dpmpp_2m", "dpmpp_2m_karras" })
            Assert.Contains(id, error.Message);
    }

    [Fact]
    public void CreateFromConfigPicksTheClassOfTheFile()
    {
        var registry = new SchedulerRegistry();
        Assert.IsType<PndmScheduler>(registry.CreateFromConfig(Sd15));
        Assert.IsType<EulerDiscreteScheduler>(registry.CreateFromConfig(Sd15 with { ClassName = "EulerDiscreteScheduler" }));
        var karras = (DpmSolverMultistepScheduler)registry.CreateFromConfig(Sd15 with { ClassName = "DPMSolverMultistepScheduler" });
        karras.SetTimesteps(20);
        var plain = new DpmSolverMultistepScheduler(Sd15);
        plain.SetTimesteps(20);
        Assert.Equal(plain.Sigmas, karras.Sigmas);
    }

    [Fact]
    public void UnsupportedClassIsNamedWithTheSupportedOnes()
    {
        var error = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new SchedulerRegistry().CreateFromConfig(Sd15 with { ClassName = "KarrasVeScheduler" }));
        Assert.Contains("KarrasVeScheduler", error.Message);
        Assert.Contains("EulerDiscreteScheduler", error.Message);
        Assert.Contains("PNDMScheduler", error.Message);
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new SchedulerRegistry().CreateFromConfig(SchedulerConfig.Default));
    }

    [Fact]
    public void AllDescribesTheBuiltIns()
    {
        // The first seven; later samplers are appended after them (MoreSchedulersRegistryTests lists those).
        var all = new SchedulerRegistry().All.Take(7).ToList();
        Assert.Equal(["pndm", "ddim", "euler", "euler_a", "lms", "dpmpp_2m", "dpmpp_2m_karras"], all.Select(i => i.Id));
        Assert.Equal(["euler_a"], all.Where(i => i.IsStochastic).Select(i => i.Id));
        Assert.Equal("EulerAncestralDiscreteScheduler", all.Single(i => i.Id == "euler_a").DiffusersClass);
        Assert.Equal("DPM++ 2M Karras", all.Single(i => i.Id == "dpmpp_2m_karras").DisplayName);
    }

    [Fact]
    public void UserSchedulersCanBeRegistered()
    {
        var registry = new SchedulerRegistry();
        registry.Register(new SchedulerInfo("my_euler", "My Euler", "MyEulerScheduler", ["mine"], IsStochastic: false),
            config => new EulerDiscreteScheduler(config with { UseKarrasSigmas = true }));
        Assert.IsType<EulerDiscreteScheduler>(registry.Create("Mine", Sd15));
        Assert.IsType<EulerDiscreteScheduler>(registry.CreateFromConfig(Sd15 with { ClassName = "MyEulerScheduler" }));
        Assert.Contains(registry.All, i => i.Id == "my_euler");
        // The default registry is untouched by another instance's registrations.
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => SchedulerRegistry.Default.Create("mine", Sd15));

        var clash = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => registry.Register(
            new SchedulerInfo("other", "Other", "OtherScheduler", ["euler a"], IsStochastic: false), config => new DdimScheduler(config)));
        Assert.Contains("euler_a", clash.Message);
    }

    [Fact]
    public void StochasticFlagMatchesBehaviour()
    {
        // Two different generators give different Euler a runs and identical Euler runs.
        float[] Run(string name, long seed)
        {
            var scheduler = new SchedulerRegistry().Create(name, Sd15);
            scheduler.SetTimesteps(5);
            return DiffusersReference.Sample(scheduler, new TorchGenerator(seed));
        }

        Assert.NotEqual(Run("euler_a", 1), Run("euler_a", 2));
        Assert.Equal(Run("euler", 1), Run("euler", 2));
    }
}
