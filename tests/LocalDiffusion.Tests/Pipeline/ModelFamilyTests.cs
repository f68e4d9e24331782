using LocalDiffusion.Pipeline;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>The model family is decided once at load, and families LocalDiffusion cannot run are refused by name.</summary>
public class ModelFamilyTests
{
    [Fact]
    public void TinyModelIsStableDiffusion1WithClassifierFreeGuidanceAboveOne()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var family = pipeline.Info.Family;
        Assert.Equal(ModelArchitecture.StableDiffusion1, family.Architecture);
        Assert.Equal(Distillation.None, family.Distillation);
        Assert.False(family.Inpainting);
        Assert.Equal("SD 1.x", family.Name);
        // diffusers: do_classifier_free_guidance = guidance_scale > 1.
        Assert.True(family.UsesClassifierFreeGuidance(1.01f));
        Assert.False(family.UsesClassifierFreeGuidance(1f));
        Assert.False(family.UsesClassifierFreeGuidance(0f));
    }

    [Fact]
    public void InpaintingUnetIsAnInpaintingFamily()
    {
        var pipeline = TestModels.Pipeline("tiny-inpainting");
        Assert.True(pipeline.Info.Family.Inpainting);
        Assert.Contains("inpainting", pipeline.Info.Family.Name);
    }

    [Theory]
    [InlineData("StableDiffusion3Pipeline", "Stable Diffusion 3")]
    [InlineData("FluxPipeline", "Flux")]
    [InlineData("StableDiffusionControlNetPipeline", "ControlNet")]
    [InlineData("StableDiffusionUpscalePipeline", "upscaling")]
    public void OtherPipelinesAreRefusedByWhatTheyAre(string pipelineClass, string what)
    {
        using var model = TestModels.CopyOf("tiny");
        var index = Path.Combine(model.Path, "model_index.json");
        File.WriteAllText(index, $"{{\"_class_name\": \"{pipelineClass}\"}}");

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Equal(index, e.FilePath);
        Assert.Contains(pipelineClass, e.Message);
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public async Task AComponentListedAsNullIsAbsent()
    {
        // diffusers writes a component a pipeline does without as [null, null] (e.g. an SD 1.5 folder saved from a
        // pipeline class that has a text_encoder_2 slot): it is not there, and the model is what its files say.
        using var model = TestModels.CopyOf("tiny");
        var index = Path.Combine(model.Path, "model_index.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(index))!.AsObject();
        json["text_encoder_2"] = new System.Text.Json.Nodes.JsonArray(null, null);
        json["tokenizer_2"] = new System.Text.Json.Nodes.JsonArray(null, null);
        File.WriteAllText(index, json.ToJsonString());

        using var pipeline = StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu", UseModelCache = false });
        Assert.Equal(TestModels.Pipeline("tiny").Info.Family.Name, pipeline.Info.Family.Name);
        var request = TestModels.Request() with { Steps = 2 };
        var result = await pipeline.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal((await TestModels.Pipeline("tiny").GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken)).FinalLatents, result.FinalLatents);
    }

    [Theory]
    [InlineData(".safetensors")]
    [InlineData(".ckpt")]
    public void AWeightsFileIsRefusedAsACheckpointOrLora(string extension)
    {
        var file = TestPaths.WriteTempFile([1, 2, 3], extension);
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(file));
        Assert.Equal(file, e.FilePath);
        Assert.Contains("LoRA", e.Message);
    }
}
