using LocalDiffusion.Pipeline;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Tests.Errors;

/// <summary>
/// The error contract for model folders: every bad file or value gives a <see cref="ModelLoadException"/> that names
/// the file (and the key, for configs) at load time, never a generic exception or a wrong picture later.
/// </summary>
public class ModelFolderErrorTests
{
    private static readonly PipelineOptions Cpu = new() { Device = "cpu" };

    private static ModelLoadException LoadFails(string path) =>
        Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(path, Cpu));

    private static string SchedulerConfig(string model) => Path.Combine(model, "scheduler", "scheduler_config.json");

    private static void SetJsonKey(string file, string key, string rawValue)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        node[key] = System.Text.Json.Nodes.JsonNode.Parse(rawValue);
        File.WriteAllText(file, node.ToJsonString());
    }

    [Theory]
    [InlineData("steps_offset", "1000000", "less than num_train_timesteps")]
    [InlineData("beta_end", "2.0", "between 0 and 1")]
    [InlineData("beta_start", "0", "between 0 and 1")]
    [InlineData("num_train_timesteps", "1000000000", "at most 100000")]
    [InlineData("sigma_min", "-1", "a positive number")]
    [InlineData("beta_schedule", "\"cosine\"", "\"scaled_linear\"")]
    public void SchedulerConfigValuesOutOfRangeNameFileKeyAndValue(string key, string value, string expected)
    {
        using var model = TestModels.CopyOf("tiny");
        SetJsonKey(SchedulerConfig(model.Path), key, value);

        var e = LoadFails(model.Path);
        Assert.Equal(SchedulerConfig(model.Path), e.FilePath);
        Assert.Contains($"\"{key}\"", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void ThresholdingIsRefusedAtLoadWhenTheConfiguredClassWouldUseIt()
    {
        using var model = TestModels.CopyOf("tiny");
        SetJsonKey(SchedulerConfig(model.Path), "_class_name", "\"DDIMScheduler\"");
        SetJsonKey(SchedulerConfig(model.Path), "thresholding", "true");

        var e = LoadFails(model.Path);
        Assert.Equal(SchedulerConfig(model.Path), e.FilePath);
        Assert.Contains("thresholding", e.Message);
    }

    [Fact]
    public async Task ThresholdingRefusesOnlyTheSchedulersThatWouldUseIt()
    {
        // PNDM (the configured class) has no thresholding in diffusers either, so the model loads; asking for DDIM,
        // which would threshold, is a bad request naming the field and the key.
        using var model = TestModels.CopyOf("tiny");
        SetJsonKey(SchedulerConfig(model.Path), "thresholding", "true");
        using var pipeline = StableDiffusionPipeline.Load(model.Path, Cpu);

        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => pipeline.GenerateAsync(TestModels.Request() with { Scheduler = "ddim" }));
        Assert.Equal("Scheduler", e.ParamName);
        Assert.Contains("thresholding", e.Message);
        Assert.Contains("scheduler_config.json", e.Message);
        Assert.NotEmpty((await pipeline.GenerateAsync(TestModels.Request() with { Steps = 2 })).Images);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    [InlineData("1e12")]
    [InlineData("2.5")]
    [InlineData("\"64\"")]
    public void UnetSampleSizeOutOfRangeNamesConfigAndKey(string value)
    {
        using var model = TestModels.CopyOf("tiny");
        var config = Path.Combine(model.Path, "unet", "config.json");
        File.WriteAllText(config, $$"""{"_class_name": "UNet2DConditionModel", "sample_size": {{value}}}""");

        var e = LoadFails(model.Path);
        Assert.Equal(config, e.FilePath);
        Assert.Contains("\"sample_size\"", e.Message);
        Assert.Contains(value, e.Message);
    }

    [Fact]
    public void SampleSizeThatTheUnetCannotDrawIsNamed()
    {
        // The tiny UNet halves its latents once, so 4 (32 px) works and 3 (24 px) cannot.
        using var model = TestModels.CopyOf("tiny");
        var config = Path.Combine(model.Path, "unet", "config.json");
        File.WriteAllText(config, """{"sample_size": 3}""");

        var e = LoadFails(model.Path);
        Assert.Equal(config, e.FilePath);
        Assert.Contains("multiples of 16 px", e.Message);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-0.000001")]
    [InlineData("1e-9")]
    [InlineData("1e400")]
    public void VaeScalingFactorOutOfRangeIsNamed(string value)
    {
        using var model = TestModels.CopyOf("tiny-optimum");
        var config = Path.Combine(model.Path, "vae_decoder", "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("0.18215", value, StringComparison.Ordinal));

        var e = LoadFails(model.Path);
        Assert.Equal(config, e.FilePath);
        Assert.Contains("\"scaling_factor\"", e.Message);
    }

    [Fact]
    public void TruncatedExternalWeightsAreNamedBeforeOnnxRuntimeSeesThem()
    {
        using var model = TestModels.CopyOf("tiny-external");
        var weights = Path.Combine(model.Path, "unet", "model.onnx_data");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);

        var e = LoadFails(model.Path);
        Assert.Equal(weights, e.FilePath);
        Assert.Contains("truncated", e.Message);
        Assert.Contains($"the file has {(bytes.Length / 2).ToString("N0", System.Globalization.CultureInfo.InvariantCulture)}", e.Message);
    }

    [Fact]
    public void LfsPointerInPlaceOfExternalWeightsIsNamed()
    {
        using var model = TestModels.CopyOf("tiny-external");
        var weights = Path.Combine(model.Path, "unet", "model.onnx_data");
        File.WriteAllText(weights, "version https://git-lfs.github.com/spec/v1\noid sha256:4f1ce8c5\nsize 3438167534\n");

        var e = LoadFails(model.Path);
        Assert.Equal(weights, e.FilePath);
        Assert.Contains("Git LFS pointer", e.Message);
    }

    [Theory]
    [InlineData("vocab.json")]
    [InlineData("merges.txt")]
    public void MissingOrBrokenTokenizerFilesAreModelLoadErrors(string file)
    {
        using var missing = TestModels.CopyOf("tiny");
        File.Delete(Path.Combine(missing.Path, "tokenizer", file));
        Assert.Contains(file, LoadFails(missing.Path).FilePath);

        using var pointer = TestModels.CopyOf("tiny");
        File.WriteAllText(Path.Combine(pointer.Path, "tokenizer", file), "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n");
        var e = LoadFails(pointer.Path);
        Assert.EndsWith(file, e.FilePath);
        Assert.Contains("LFS", e.Message);
    }

    [Fact]
    public void UnreadableSchedulerConfigIsAModelLoadError()
    {
        using var model = TestModels.CopyOf("tiny");
        File.WriteAllText(SchedulerConfig(model.Path), "{ \"beta_start\": ");
        var e = LoadFails(model.Path);
        Assert.Equal(SchedulerConfig(model.Path), e.FilePath);
        Assert.Contains("not valid JSON", e.Message);
    }
}
