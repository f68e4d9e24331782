using LocalDiffusion.Pipeline;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>Per-family generation defaults (diffusers' pipeline defaults) and the folder's localdiffusion.json.</summary>
public class ModelDefaultsTests
{
    [Fact]
    public void StableDiffusionKeepsTwentyStepsAndGuidance7Point5()
    {
        var family = TestModels.Pipeline("tiny").Info.Family;
        Assert.Equal((20, 7.5f), (family.DefaultSteps, family.DefaultGuidanceScale));
    }

    [Fact]
    public void LcmDefaultsToFourStepsAndGuidance8Point5()
    {
        // LatentConsistencyModelPipeline.__call__: num_inference_steps = 4, guidance_scale = 8.5.
        var family = TestModels.Pipeline("tiny-lcm").Info.Family;
        Assert.Equal((4, 8.5f), (family.DefaultSteps, family.DefaultGuidanceScale));
    }

    [Fact]
    public async Task ATurboFolderNameGivesOneStepWithoutGuidance()
    {
        using var temp = TestModels.CopyOf("tiny");
        var turbo = Path.Combine(temp.Path, "sd-turbo-onnx");
        CopyDirectory(temp.Path, turbo);
        using var pipeline = StableDiffusionPipeline.Load(turbo, new PipelineOptions { Device = "cpu" });
        var family = pipeline.Info.Family;
        Assert.Equal(Distillation.Turbo, family.Distillation);
        Assert.Equal((1, 0f), (family.DefaultSteps, family.DefaultGuidanceScale));
        var result = await pipeline.GenerateAsync(TestModels.Request() with { Steps = family.DefaultSteps, GuidanceScale = family.DefaultGuidanceScale });
        Assert.Equal(1, result.UnetCalls); // no unconditional batch at guidance 0
    }

    [Fact]
    public void LocalDiffusionJsonOverridesTheDefaults()
    {
        using var model = TestModels.CopyOf("tiny");
        File.WriteAllText(Path.Combine(model.Path, "localdiffusion.json"), """{"distillation": "turbo", "steps": 2, "guidance_scale": 1.5}""");
        using var pipeline = StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" });
        Assert.Equal(Distillation.Turbo, pipeline.Info.Family.Distillation);
        Assert.Equal((2, 1.5f), (pipeline.Info.Family.DefaultSteps, pipeline.Info.Family.DefaultGuidanceScale));
        Assert.Contains("Turbo", pipeline.Info.Family.Name);
    }

    [Theory]
    [InlineData("""{"steps": 0}""", "steps")]
    [InlineData("""{"guidance_scale": "high"}""", "guidance_scale")]
    [InlineData("""{"distillation": "sdxl"}""", "distillation")]
    [InlineData("""{"steps": """, "invalid JSON")]
    public void ABadLocalDiffusionJsonIsNamed(string text, string detail)
    {
        using var model = TestModels.CopyOf("tiny");
        var path = Path.Combine(model.Path, "localdiffusion.json");
        File.WriteAllText(path, text);
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Equal(path, e.FilePath);
        Assert.Contains(detail, e.Message);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            if (file.StartsWith(to, StringComparison.Ordinal)) continue;
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
