using LocalDiffusion.Pipeline;
using System.Text.Json;

namespace LocalDiffusion.Tests.Families;

/// <summary>
/// SD 3 and FLUX.1 text-to-image, run by their family adapters through the family-neutral orchestrator, against the
/// final latents of diffusers v0.31.0's StableDiffusion3Pipeline / FluxPipeline steps on the same tiny models
/// (TestData/Pipeline/diffusers_sd3_tiny.json and diffusers_flux_tiny.json, from tools/pipeline_reference/sd3_tiny.py and
/// flux_tiny.py, which run diffusers' transformer, VAE and scheduler classes in the pipelines' order because the pipeline
/// modules need transformers to import). Same seeds, so the same torch noise; tolerance 1e-4 of the latents' scale.
/// </summary>
public sealed class FlowFamilyParityTests
{
    private static JsonElement Cases(string file) =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Pipeline", file))).RootElement.GetProperty("cases");

    private static JsonElement Case(string file, string name) =>
        Cases(file).EnumerateArray().First(c => c.GetProperty("name").GetString() == name);

    private static float[] Floats(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetSingle())];

    private static string Model(string name) => Path.Combine(TestPaths.ModelsDir, "test", name);

    private static void AssertLatents(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = expected.Max(MathF.Abs);
        var worst = expected.Zip(actual, (e, a) => MathF.Abs(e - a)).Max();
        Assert.True(worst <= 1e-4f * scale, $"{what}: max |Δ| {worst} > 1e-4 × {scale}");
    }

    [Theory]
    [InlineData("euler_64x96", null)]
    [InlineData("heun_48x80", "flow_heun")]
    public async Task Sd3_text_to_image_matches_diffusers(string name, string? scheduler)
    {
        var c = Case("diffusers_sd3_tiny.json", name);
        using var pipeline = StableDiffusionPipeline.Load(Model("tiny-sd3"), new PipelineOptions { Device = "cpu" });
        Assert.Equal("SD 3", pipeline.Info.Family.Name);
        var result = await pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = c.GetProperty("prompt").GetString()!,
            Steps = c.GetProperty("steps").GetInt32(),
            GuidanceScale = c.GetProperty("guidance").GetSingle(),
            Width = c.GetProperty("width").GetInt32(),
            Height = c.GetProperty("height").GetInt32(),
            Seed = c.GetProperty("seed").GetInt64(),
            Scheduler = scheduler,
            MaxSequenceLength = c.GetProperty("max_sequence_length").GetInt32(),
        });
        AssertLatents(Floats(c.GetProperty("final_latents")), result.FinalLatents, name);
        Assert.Equal(c.GetProperty("timesteps").GetArrayLength(), result.UnetEvaluations);
    }

    [Theory]
    [InlineData("schnell_64x96", "tiny-flux-schnell")]
    [InlineData("dev_96x64", "tiny-flux-dev")]
    [InlineData("dev_80x48_g5", "tiny-flux-dev")]
    public async Task Flux_text_to_image_matches_diffusers(string name, string model)
    {
        var c = Case("diffusers_flux_tiny.json", name);
        using var pipeline = StableDiffusionPipeline.Load(Model(model), new PipelineOptions { Device = "cpu" });
        var result = await pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = c.GetProperty("prompt").GetString()!,
            Steps = c.GetProperty("steps").GetInt32(),
            GuidanceScale = c.TryGetProperty("guidance", out var g) ? g.GetSingle() : null,
            Width = c.GetProperty("width").GetInt32(),
            Height = c.GetProperty("height").GetInt32(),
            Seed = c.GetProperty("seed").GetInt64(),
            MaxSequenceLength = c.GetProperty("max_sequence_length").GetInt32(),
        });
        AssertLatents(Floats(c.GetProperty("final_latents")), result.FinalLatents, name);
    }

    [Fact]
    public async Task Flow_and_diffusion_samplers_are_refused_on_the_other_kind_of_model()
    {
        using var sd15 = StableDiffusionPipeline.Load(Model("tiny"), new PipelineOptions { Device = "cpu" });
        var flow = await Assert.ThrowsAsync<LocalDiffusion.Errors.ModelIncompatibleException>(() => sd15.GenerateAsync(new GenerationRequest { Prompt = "x", Scheduler = "flow_euler" }));
        Assert.Equal("Scheduler", flow.ParamName);
        using var sd3 = StableDiffusionPipeline.Load(Model("tiny-sd3"), new PipelineOptions { Device = "cpu" });
        var diffusion = await Assert.ThrowsAsync<LocalDiffusion.Errors.ModelIncompatibleException>(() => sd3.GenerateAsync(new GenerationRequest { Prompt = "x", Scheduler = "dpmpp_2m", Width = 64, Height = 64 }));
        Assert.Equal("Scheduler", diffusion.ParamName);
        Assert.Contains("flow_euler", diffusion.Message);
        // Not silently dropped: a <lora:…> tag without a LoRA folder is refused, as on SD 1.x (FamilyLoraTests applies real ones).
        var lora = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => sd3.GenerateAsync(new GenerationRequest { Prompt = "x <lora:style:0.8>", Width = 64, Height = 64 }));
        Assert.Contains("no LoRA folder", lora.Message);
    }

    [Theory]
    [InlineData("tiny-flux-dev", "transformer")]
    [InlineData("bfl-tiny-flux-dev", "transformer.opt/fp32")] // Black Forest Labs' layout: its own folder names
    public void A_model_too_large_for_this_machine_is_refused_before_loading_naming_the_sizes(string name, string transformerFolder)
    {
        // tiny-flux-dev's files stand in for FLUX.1's 24 GB: the machine is told to have less than they need.
        var model = Model(name);
        var bytes = Directory.EnumerateFiles(Path.Combine(model, transformerFolder), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        LocalDiffusion.Families.MemoryPreflight.MachineBytesOverride = bytes / 2;
        try
        {
            var e = Assert.Throws<LocalDiffusion.Errors.ResourceLimitException>(() => StableDiffusionPipeline.Load(model, new PipelineOptions { Device = "cpu" }));
            Assert.Equal(model, e.Culprit.File);
            Assert.Equal(LocalDiffusion.Errors.ErrorKind.ResourceLimit, LocalDiffusion.Errors.ErrorContract.KindOf(e));
            Assert.Contains(transformerFolder, e.Message);
            Assert.Contains("page to disk", e.Message);
            Assert.Contains("LowMemory", e.Message);
        }
        finally
        {
            LocalDiffusion.Families.MemoryPreflight.MachineBytesOverride = null;
        }
    }
}
