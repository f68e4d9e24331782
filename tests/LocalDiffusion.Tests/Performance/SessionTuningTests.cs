using LocalDiffusion.Pipeline;
namespace LocalDiffusion.Tests.Performance;

/// <summary>ONNX Runtime's memory knobs change where buffers live, never the numbers (issue 12).</summary>
public class SessionTuningTests
{
    private static async Task<GenerationResult> Generate(PipelineOptions options)
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), options with { Device = "cpu", UseModelCache = false });
        return await pipeline.GenerateAsync(TestModels.Request() with { Steps = 3, Scheduler = "dpmpp_2m" });
    }

    [Fact]
    public async Task ArenaPatternPrepackingAndSpinningSettingsGiveBitIdenticalPictures()
    {
        var plain = await Generate(new PipelineOptions());
        PipelineOptions[] variants =
        [
            new() { EnableCpuMemArena = false, EnableMemoryPattern = false },
            new() { PrepackWeights = true, EnableMemoryPattern = true }, // ONNX Runtime's defaults; the engine's are off
            new() { SessionConfig = new Dictionary<string, string> { ["session.disable_prepacking"] = "0" } },
            new() { CpuArenaExtendStrategy = "same_as_requested" },
            new() { SessionConfig = new Dictionary<string, string> { ["session.intra_op.allow_spinning"] = "0" } },
        ];
        foreach (var options in variants)
        {
            var tuned = await Generate(options);
            Assert.Equal(plain.FinalLatents, tuned.FinalLatents);
            Assert.Equal(plain.Images[0].Rgb, tuned.Images[0].Rgb);
        }
    }

    [Fact]
    public void AnUnknownArenaStrategyIsNamed()
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() =>
            StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { CpuArenaExtendStrategy = "doubling" }));
        Assert.Contains("CpuArenaExtendStrategy is 'doubling'", e.Message);
    }
}
