using LocalDiffusion.Pipeline;
using System.Text.Json;
using LocalDiffusion.Denoising;
using LocalDiffusion.Model;
using LocalDiffusion.Tests.Schedulers;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>
/// LCM-distilled UNets on models/test/tiny-lcm (tools/build_lcm_test_model.py: tiny's UNet plus a timestep_cond path,
/// LCM_Dreamshaper_v7's scheduler config): no CFG batch, the guidance scale embedded as timestep_cond, and final latents
/// that match diffusers v0.31.0's LatentConsistencyModelPipeline steps (TestData/Pipeline/diffusers_lcm_tiny.json from
/// tools/pipeline_reference/lcm_tiny.py, the torch twins of the ONNX files).
/// </summary>
public class LatentConsistencyTests
{
    private static readonly PipelineReferenceCases Reference = new("diffusers_lcm_tiny.json");

    public static TheoryData<string> CaseNames => Reference.Names;

    private static JsonElement Case(string name) => Reference.Case(name);

    [Fact]
    public void TheFamilyIsLcmWithoutClassifierFreeGuidance()
    {
        var family = TestModels.Pipeline("tiny-lcm").Info.Family;
        Assert.Equal(Distillation.LatentConsistency, family.Distillation);
        Assert.Equal(256, family.GuidanceEmbeddingWidth);
        Assert.False(family.UsesClassifierFreeGuidance(8.5f));
        Assert.Equal("SD 1.x, LCM-distilled", family.Name);
    }

    [Fact]
    public async Task ANegativePromptIsReportedAsUnused()
    {
        var pipeline = TestModels.Pipeline("tiny-lcm");
        var request = new GenerationRequest { Prompt = "a cat", Steps = 1, Width = 64, Height = 64, Seed = 1 };
        var plain = await pipeline.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Empty(plain.Warnings);
        var negative = await pipeline.GenerateAsync(request with { NegativePrompt = "blurry" }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Contains("not used by LCM models", Assert.Single(negative.Warnings));
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void TheGuidanceEmbeddingMatchesDiffusers(string name)
    {
        var c = Case(name);
        var expected = DiffusersReference.Floats(c.GetProperty("w_embedding"));
        var actual = GuidanceEmbedding.Compute(c.GetProperty("guidance").GetSingle(), 256, 1);
        // sin/cos of arguments up to 7500: float32 libm results agree to a few ulps of the argument.
        Tolerance.AssertClose(expected, actual, name, relative: 0, absolute: 2e-3);
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task FinalLatentsMatchDiffusers(string name)
    {
        var c = Case(name);
        var request = new GenerationRequest
        {
            Prompt = c.GetProperty("prompt").GetString()!,
            Steps = c.GetProperty("steps").GetInt32(),
            GuidanceScale = c.GetProperty("guidance").GetSingle(),
            Seed = c.GetProperty("seed").GetInt64(),
            ImageCount = c.GetProperty("images").GetInt32(),
            Width = c.GetProperty("width").GetInt32(),
            Height = c.GetProperty("height").GetInt32(),
        };
        var result = await TestModels.Pipeline("tiny-lcm").GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(request.Steps, result.UnetEvaluations);
        Assert.Equal(request.Steps, result.UnetCalls); // one call per step: no unconditional batch
        var expected = DiffusersReference.Floats(c.GetProperty("final_latents"));
        var scale = expected.Max(MathF.Abs);
        Tolerance.AssertClose(expected, result.FinalLatents, name, relative: 0, absolute: 1e-4 * scale);
    }

    [Fact]
    public void TheLcmStandInNowLoads()
    {
        // tools/build_refused_unets.py's LCM stand-in (refused before LCM was supported) is recognised and loads.
        using var model = TestModels.CopyOf("tiny");
        File.Copy(Path.Combine(TestPaths.ModelsDir, "test", "refused", "unet-lcm.onnx"), Path.Combine(model.Path, "unet", "model.onnx"), overwrite: true);
        using var pipeline = StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" });
        Assert.Equal(Distillation.LatentConsistency, pipeline.Info.Family.Distillation);
    }
}
