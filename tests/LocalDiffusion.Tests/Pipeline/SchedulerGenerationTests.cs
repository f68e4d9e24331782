using LocalDiffusion.Pipeline;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>Every registered scheduler drives a real generation on the test model.</summary>
public class SchedulerGenerationTests
{
    public static TheoryData<string> SchedulerIds => new(SchedulerRegistry.Default.All.Select(i => i.Id));

    // The flow-matching samplers run SD 3 and FLUX (tiny-sd3 here); the diffusion samplers the UNet models.
    private static bool IsFlow(string id) => id.StartsWith("flow_", StringComparison.Ordinal);

    [Theory]
    [MemberData(nameof(SchedulerIds))]
    public async Task EachSchedulerGeneratesDeterministically(string id)
    {
        var pipeline = TestModels.Pipeline(IsFlow(id) ? "tiny-sd3" : "tiny");
        var request = TestModels.Request() with { Scheduler = id, Steps = 5 };
        var a = await pipeline.GenerateAsync(request);
        var b = await pipeline.GenerateAsync(request);

        Assert.All(a.FinalLatents, v => Assert.True(float.IsFinite(v), $"{id} produced a non-finite latent"));
        Assert.Equal(a.FinalLatents, b.FinalLatents);
        Assert.True(a.UnetEvaluations >= 5, $"{id} ran {a.UnetEvaluations} UNet evaluations for 5 steps");
        Assert.Equal(SchedulerRegistry.Default.Describe(id).DisplayName, a.Scheduler);
    }

    [Fact]
    public async Task DifferentSchedulersGiveDifferentLatents()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var euler = await pipeline.GenerateAsync(TestModels.Request() with { Scheduler = "euler" });
        var ddim = await pipeline.GenerateAsync(TestModels.Request() with { Scheduler = "ddim" });
        Assert.NotEqual(euler.FinalLatents, ddim.FinalLatents);
    }

    [Fact]
    public void ModelsSchedulerConfigIsTheDefault() =>
        Assert.Equal("PLMS", TestModels.Pipeline("tiny").Info.Scheduler); // the SD 1.5 PNDM config the test models ship

    [Fact]
    public async Task AFolderWithoutSchedulerConfigUsesStableDiffusion15s()
    {
        using var model = TestModels.CopyOf("tiny");
        Directory.Delete(Path.Combine(model.Path, "scheduler"), recursive: true);
        using var pipeline = StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" });

        Assert.Equal("PLMS", pipeline.Info.Scheduler);
        var withConfig = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request());
        var without = await pipeline.GenerateAsync(TestModels.Request());
        Assert.Equal(withConfig.FinalLatents, without.FinalLatents);
    }
}
