using LocalDiffusion.Pipeline;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>Every way a model folder can be wrong gives an error that names the file and what was expected.</summary>
public class ModelLoadingErrorTests
{
    [Fact]
    public void MissingFolderIsNamed()
    {
        var path = Path.Combine(Path.GetTempPath(), "ld-no-such-model");
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("model folder not found", e.Message);
    }

    [Theory]
    [InlineData("unet")]
    [InlineData("text_encoder")]
    [InlineData("vae_decoder")]
    public void MissingComponentIsNamed(string component)
    {
        using var model = TestModels.CopyOf("tiny");
        File.Delete(Path.Combine(model.Path, component, "model.onnx"));

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path));
        Assert.EndsWith(Path.Combine(component, "model.onnx"), e.FilePath);
        Assert.Contains($"the {component} ONNX model was expected", e.Message);
    }

    [Fact]
    public void MissingTokenizerIsNamed()
    {
        using var model = TestModels.CopyOf("tiny");
        Directory.Delete(Path.Combine(model.Path, "tokenizer"), recursive: true);

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path));
        Assert.Contains("tokenizer", e.Message);
        Assert.Contains("vocab.json", e.Message);
    }

    [Fact]
    public void GitLfsPointerIsRecognised()
    {
        using var model = TestModels.CopyOf("tiny");
        var unet = Path.Combine(model.Path, "unet", "model.onnx");
        File.WriteAllText(unet, "version https://git-lfs.github.com/spec/v1\noid sha256:4f1ce8c5\nsize 3438167534\n");

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Equal(unet, e.FilePath);
        Assert.Contains("Git LFS pointer", e.Message);
    }

    [Fact]
    public void CorruptOnnxFileIsNamed()
    {
        using var model = TestModels.CopyOf("tiny");
        var vae = Path.Combine(model.Path, "vae_decoder", "model.onnx");
        var bytes = File.ReadAllBytes(vae);
        File.WriteAllBytes(vae, bytes[..(bytes.Length / 3)]);

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Equal(vae, e.FilePath);
        Assert.Contains("cannot load this vae_decoder model", e.Message);
    }

    [Fact]
    public void MissingExternalWeightsAreNamed()
    {
        using var model = TestModels.CopyOf("tiny-external");
        File.Delete(Path.Combine(model.Path, "unet", "model.onnx_data"));

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.EndsWith(Path.Combine("unet", "model.onnx_data"), e.FilePath);
        Assert.Contains("external-data file", e.Message);
    }

    [Fact]
    public void AModelThatIsNotAUnetIsRejected()
    {
        using var model = TestModels.CopyOf("tiny");
        File.Copy(Path.Combine(model.Path, "text_encoder", "model.onnx"), Path.Combine(model.Path, "unet", "model.onnx"), overwrite: true);

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Contains("does not look like a Stable Diffusion UNet", e.Message);
        Assert.Contains("input_ids", e.Message); // says what it found
    }

    [Fact]
    public void AModelThatIsNotATextEncoderIsRejected()
    {
        using var model = TestModels.CopyOf("tiny");
        File.Copy(Path.Combine(model.Path, "vae_decoder", "model.onnx"), Path.Combine(model.Path, "text_encoder", "model.onnx"), overwrite: true);

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Contains("does not look like a CLIP text encoder", e.Message);
    }

    [Theory]
    [InlineData("unet-sdxl.onnx", "text_embeds", "SDXL")]
    public void UnsupportedUnetVariantsAreRefusedByName(string file, string detail, string kind)
    {
        // Stand-ins with those variants' inputs, built by tools/build_refused_unets.py.
        using var model = TestModels.CopyOf("tiny");
        var unet = Path.Combine(model.Path, "unet", "model.onnx");
        File.Copy(Path.Combine(TestPaths.ModelsDir, "test", "refused", file), unet, overwrite: true);

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Equal(unet, e.FilePath);
        Assert.Contains(detail, e.Message);
        Assert.Contains(kind, e.Message);
    }

    [Fact]
    public void MalformedModelIndexIsNamed()
    {
        using var model = TestModels.CopyOf("tiny");
        var index = Path.Combine(model.Path, "model_index.json");
        File.WriteAllText(index, "{ \"_class_name\": ");

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path));
        Assert.Equal(index, e.FilePath);
        Assert.Contains("invalid JSON", e.Message);
    }

    [Fact]
    public void SdxlIndexIsRejectedAsUnsupported()
    {
        using var model = TestModels.CopyOf("tiny");
        File.WriteAllText(Path.Combine(model.Path, "model_index.json"),
            "{\"_class_name\": \"StableDiffusionXLPipeline\", \"text_encoder_2\": [\"transformers\", \"CLIPTextModelWithProjection\"]}");

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path));
        Assert.Contains("SDXL", e.Message);
    }

    [Fact]
    public void UnavailableExecutionProviderSaysWhichPackageHasIt()
    {
        // The CPU package is what this repository builds against by default; it has no CUDA provider.
        if (SessionFactory.AvailableProviders().Contains("CUDAExecutionProvider"))
            Assert.Skip("this ONNX Runtime build has CUDA; the error path is for builds without it.");

        var e = Assert.Throws<ExecutionProviderUnavailableException>(
            () => StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cuda:0" }));
        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu", e.Message);
        Assert.Contains("OnnxRuntimeFlavor=Gpu", e.Message);
    }

    [Fact]
    public void AutoFallsBackToTheCpuAndSaysSo()
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "auto" });
        if (SessionFactory.AvailableProviders().Count == 1)
            Assert.Equal("cpu", pipeline.Info.Device);
        Assert.NotEmpty(pipeline.Info.Device);
    }
}
