using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

/// <summary>How the flow-matching schedulers are found, configured and refused (numbers: <see cref="FlowMatchParityTests"/>).</summary>
public class FlowMatchSchedulerTests
{
    private const string FluxDev = """
        {"_class_name": "FlowMatchEulerDiscreteScheduler", "base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096,
         "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": true}
        """;

    [Theory]
    [InlineData("flow_euler", typeof(FlowMatchEulerDiscreteScheduler))]
    [InlineData("Euler (flow)", typeof(FlowMatchEulerDiscreteScheduler))]
    [InlineData("FlowMatchEulerDiscreteScheduler", typeof(FlowMatchEulerDiscreteScheduler))]
    [InlineData("flow_heun", typeof(FlowMatchHeunDiscreteScheduler))]
    [InlineData("Heun (flow)", typeof(FlowMatchHeunDiscreteScheduler))]
    [InlineData("FlowMatchHeunDiscreteScheduler", typeof(FlowMatchHeunDiscreteScheduler))]
    public void NamesFindTheFlowSchedulers(string name, Type type) =>
        Assert.IsType(type, SchedulerRegistry.Default.Create(name, SchedulerConfig.Default));

    [Fact]
    public void AModelFoldersClassNamePicksThem()
    {
        var sd3 = SchedulerConfig.Parse("""{"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}""");
        var euler = Assert.IsType<FlowMatchEulerDiscreteScheduler>(SchedulerRegistry.Default.CreateFromConfig(sd3));
        Assert.Equal(3.0, euler.Shift);
        Assert.False(euler.UseDynamicShifting);
        Assert.IsType<FlowMatchHeunDiscreteScheduler>(SchedulerRegistry.Default.CreateFromConfig(sd3 with { ClassName = "FlowMatchHeunDiscreteScheduler" }));
    }

    [Fact]
    public void ConfigKeysAreRead()
    {
        var config = SchedulerConfig.Parse(FluxDev);
        Assert.Equal((3.0, true, 0.5, 1.15, 256, 4096),
            (config.Shift, config.UseDynamicShifting, config.BaseShift, config.MaxShift, config.BaseImageSeqLen, config.MaxImageSeqLen));
        Assert.Throws<InvalidDataException>(() => SchedulerConfig.Parse("""{"shift": 0}"""));
        Assert.Throws<InvalidDataException>(() => SchedulerConfig.Parse("""{"use_dynamic_shifting": "yes"}"""));
    }

    [Fact]
    public void DynamicShiftingNeedsMu()
    {
        var scheduler = new FlowMatchEulerDiscreteScheduler(SchedulerConfig.Parse(FluxDev));
        var error = Assert.Throws<InvalidOperationException>(() => scheduler.SetTimesteps(4));
        Assert.Contains("mu", error.Message);
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => scheduler.SetTimesteps(4, null));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => scheduler.SetSigmas(FlowMatchEulerDiscreteScheduler.FluxSigmas(4)));

        // 1024² in FLUX: 64×64 tokens → μ = max_shift; the first σ stays 1, the rest move towards 1.
        Assert.Equal(1.15, scheduler.MuFor(4096), 12);
        scheduler.SetSigmas(FlowMatchEulerDiscreteScheduler.FluxSigmas(4), scheduler.MuFor(4096));
        Assert.Equal(1f, scheduler.Sigmas[0]);
        Assert.True(scheduler.Sigmas[1] > 0.75f);
        Assert.Equal(0f, scheduler.Sigmas[^1]);
        Assert.Equal(scheduler.Sigmas[1] * 1000f, scheduler.Timesteps[1]);
    }

    [Fact]
    public void StaticShiftIgnoresMuAsDiffusersDoes()
    {
        var schnell = new FlowMatchEulerDiscreteScheduler(SchedulerConfig.Parse("""{"shift": 1.0, "use_dynamic_shifting": false}"""));
        schnell.SetSigmas(FlowMatchEulerDiscreteScheduler.FluxSigmas(4), mu: 1.15);
        Assert.Equal([1f, 0.75f, 0.5f, 0.25f, 0f], schnell.Sigmas);
        Assert.Equal([1000f, 750f, 500f, 250f], schnell.Timesteps);
    }

    [Fact]
    public void HeunRefusesDynamicShifting() =>
        Assert.Throws<NotSupportedException>(() => new FlowMatchHeunDiscreteScheduler(SchedulerConfig.Parse(FluxDev)));

    [Fact]
    public void HeunListsEachStepTwiceAndStepsInOrder()
    {
        var heun = new FlowMatchHeunDiscreteScheduler(SchedulerConfig.Parse("""{"shift": 3.0}"""));
        heun.SetTimesteps(3);
        Assert.Equal(5, heun.Timesteps.Count);
        Assert.Equal(6, heun.Sigmas.Count);
        Assert.Equal(2, ((IScheduler)heun).Order);
        var sample = new float[4];
        Assert.Throws<InvalidOperationException>(() => heun.Step(new float[4], 1, sample, new LocalDiffusion.Randomness.TorchGenerator(0)));
    }

    [Fact]
    public void ScaleNoiseInterpolatesBetweenSampleAndNoise()
    {
        var scheduler = new FlowMatchEulerDiscreteScheduler(SchedulerConfig.Default);
        scheduler.SetSigmas(FlowMatchEulerDiscreteScheduler.FluxSigmas(4)); // σ = 1, 0.75, 0.5, 0.25 (shift 1)
        var destination = new float[2];
        scheduler.ScaleNoise([2f, 4f], [10f, 20f], 2, destination);
        Assert.Equal([6f, 12f], destination);
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => scheduler.ScaleNoise([2f, 4f], [10f, 20f], 4, destination));
    }

    [Fact]
    public void NeedsSetTimestepsAndAtLeastOneStep()
    {
        var scheduler = new FlowMatchEulerDiscreteScheduler(SchedulerConfig.Default);
        Assert.Throws<InvalidOperationException>(() => scheduler.Timesteps);
        Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.SetTimesteps(0));
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => scheduler.SetSigmas([]));
    }
}
