using LocalDiffusion.Families.Flux;
using LocalDiffusion.Imaging;
using LocalDiffusion.Onnx;
using LocalDiffusion.Pipeline;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Families;

/// <summary>
/// Black Forest Labs' TensorRT ONNX layout of FLUX.1 (models/test/bfl-tiny-flux-schnell and -dev, written from the
/// diffusers-layout tiny-flux-schnell/-dev by tools/build_flux_bfl_test_model.py: the same weights, int32 ids behind a
/// Cast, BFL's names, static T5 lengths 24 and 32). The numbers these tests expect come from the diffusers-layout models
/// run by the same engine, whose own parity with diffusers v0.31.0 FlowFamilyParityTests checks. The graphs compute the
/// same functions, but ONNX Runtime optimises CLIP with BFL's static [B,77] ids differently from the dynamic export (a
/// swap test showed CLIP alone makes the difference: with its dynamic-shape graph the final latents are bit-identical),
/// so the final latents agree to the last bits: measured max |Δ| 4.8e-7 at latent scale 3.8–4.7; tolerance 1e-5 of the
/// scale, and the pictures' bytes within 1.
/// </summary>
public sealed class FluxBflReleaseTests
{
    private static string Model(string name) => Path.Combine(TestPaths.ModelsDir, "test", name);

    private static readonly PipelineOptions Cpu = new() { Device = "cpu" };

    [Theory]
    [InlineData("schnell", 24, 96, 64, 42, null)]
    [InlineData("dev", 32, 64, 96, 7, 3.5f)]
    [InlineData("dev", 32, 48, 80, 1234, 5f)]
    public async Task Bfl_layout_draws_what_the_diffusers_layout_draws(string variant, int textLength, int width, int height, long seed, float? guidance)
    {
        using var bfl = StableDiffusionPipeline.Load(Model($"bfl-tiny-flux-{variant}"), Cpu);
        using var diffusers = StableDiffusionPipeline.Load(Model($"tiny-flux-{variant}"), Cpu);
        Assert.Equal($"FLUX.1-{variant}", bfl.Info.Family.Name);
        Assert.StartsWith("Black Forest Labs' TensorRT ONNX release (transformer.opt/fp32)", bfl.Info.Layout);
        Assert.Equal("diffusers", diffusers.Info.Layout);
        Assert.Equal(diffusers.Info.Family.DefaultSteps, bfl.Info.Family.DefaultSteps);
        Assert.Equal(diffusers.Info.Family.DefaultGuidanceScale, bfl.Info.Family.DefaultGuidanceScale);
        Assert.Equal(diffusers.Info.VaeScalingFactor, bfl.Info.VaeScalingFactor);
        var request = new GenerationRequest
        {
            Prompt = "a photo of a red cat on a beach", Steps = 4, Width = width, Height = height, Seed = seed, GuidanceScale = guidance,
        };
        // The BFL export's T5 length is static: its default; the diffusers export takes any, so it is told the same.
        var fromBfl = await bfl.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken);
        var fromDiffusers = await diffusers.GenerateAsync(request with { MaxSequenceLength = textLength }, cancellationToken: TestContext.Current.CancellationToken);
        var expected = fromDiffusers.FinalLatents;
        var actual = fromBfl.FinalLatents;
        Assert.Equal(expected.Length, actual.Length);
        float worst = 0, scale = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            worst = MathF.Max(worst, MathF.Abs(expected[i] - actual[i]));
            scale = MathF.Max(scale, MathF.Abs(expected[i]));
        }
        Assert.True(worst <= 1e-5f * scale, $"max |Δ| {worst} > 1e-5 × {scale}");
        byte[] a = fromDiffusers.Images[0].Rgb, b = fromBfl.Images[0].Rgb;
        Assert.Equal(a.Length, b.Length);
        var bytes = 0;
        for (var i = 0; i < a.Length; i++) bytes = Math.Max(bytes, Math.Abs(a[i] - b[i]));
        Assert.True(bytes <= 1, $"pixels differ by {bytes}");
        TestContext.Current.TestOutputHelper?.WriteLine($"{variant} {width}x{height}: max |Δ| {worst:G3} at scale {scale:G3}, pixels within {bytes}");
    }

    [Fact]
    public async Task Info_names_the_family_and_the_layout()
    {
        var (code, output, error) = await LocalDiffusion.Tests.Cli.CliRunner.Run("info", "--model", Model("bfl-tiny-flux-dev"), "--device", "cpu");
        Assert.True(code == 0, error);
        Assert.Matches(@"family\s+FLUX\.1-dev", output);
        Assert.Matches(@"layout\s+Black Forest Labs' TensorRT ONNX release \(transformer\.opt/fp32\)", output);
        Assert.Matches(@"text_encoder_2\s+.\s+in\s+.\s+input_ids\s+.\s+int32\[\?,32\]", output);
    }

    [Theory]
    [InlineData(false, "tiny-flux-schnell")]
    [InlineData(true, "tiny-flux-dev")]
    public void The_built_in_scheduler_config_is_the_variants_diffusers_one(bool dev, string model)
    {
        // tiny-flux-*'s scheduler_config.json are black-forest-labs/FLUX.1-schnell's and -dev's (build_flux_test_model.py).
        var expected = SchedulerConfig.Load(Path.Combine(Model(model), "scheduler", "scheduler_config.json"));
        var actual = BflRelease.Scheduler(dev);
        Assert.Equal(
            (expected.ClassName, expected.NumTrainTimesteps, expected.Shift, expected.UseDynamicShifting, expected.BaseShift, expected.MaxShift, expected.BaseImageSeqLen, expected.MaxImageSeqLen),
            (actual.ClassName, actual.NumTrainTimesteps, actual.Shift, actual.UseDynamicShifting, actual.BaseShift, actual.MaxShift, actual.BaseImageSeqLen, actual.MaxImageSeqLen));
    }

    [Fact]
    public async Task Another_text_length_is_refused_naming_the_static_one()
    {
        using var bfl = StableDiffusionPipeline.Load(Model("bfl-tiny-flux-schnell"), Cpu);
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => bfl.GenerateAsync(
            new GenerationRequest { Prompt = "a cat", Steps = 1, Width = 64, Height = 64, MaxSequenceLength = 32 }, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("MaxSequenceLength", e.Message);
        Assert.Contains("exactly 24 T5 tokens", e.Message);
    }

    [Fact]
    public async Task Img2img_is_refused_naming_the_vae_encoder_the_release_lacks()
    {
        using var bfl = StableDiffusionPipeline.Load(Model("bfl-tiny-flux-schnell"), Cpu);
        Assert.Equal(["text-to-image"], bfl.Info.Tasks);
        var picture = new InitImage(64, 64, new byte[64 * 64 * 3]);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => bfl.GenerateAsync(
            new GenerationRequest { Prompt = "a cat", Steps = 2, InitImage = picture }, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Contains("vae_encoder/model.onnx", e.Message);
    }

    [Fact]
    public async Task A_vae_encoder_added_to_the_folder_enables_img2img_as_in_the_diffusers_layout()
    {
        // tiny-flux-dev's vae_encoder/ copied in; expected: the diffusers-layout folder's img2img latents, same tolerance as above.
        using var copy = CopyOf("bfl-tiny-flux-dev");
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Model("tiny-flux-dev"), "vae_encoder")))
        {
            Directory.CreateDirectory(Path.Combine(copy.Path, "vae_encoder"));
            File.Copy(file, Path.Combine(copy.Path, "vae_encoder", Path.GetFileName(file)));
        }
        using var bfl = StableDiffusionPipeline.Load(copy.Path, Cpu);
        using var diffusers = StableDiffusionPipeline.Load(Model("tiny-flux-dev"), Cpu);
        Assert.Contains("img2img", bfl.Info.Tasks);
        var rgb = new byte[64 * 64 * 3];
        for (var i = 0; i < rgb.Length; i++) rgb[i] = (byte)(i * 7 % 251);
        var request = new GenerationRequest { Prompt = "a cat", Steps = 5, Seed = 99, Strength = 0.6f, InitImage = new InitImage(64, 64, rgb) };
        var expected = (await diffusers.GenerateAsync(request with { MaxSequenceLength = 32 }, cancellationToken: TestContext.Current.CancellationToken)).FinalLatents;
        var actual = (await bfl.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken)).FinalLatents;
        float worst = 0, scale = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            worst = MathF.Max(worst, MathF.Abs(expected[i] - actual[i]));
            scale = MathF.Max(scale, MathF.Abs(expected[i]));
        }
        Assert.True(worst <= 1e-5f * scale, $"max |Δ| {worst} > 1e-5 × {scale}");
    }

    [Fact]
    public void A_t5_of_another_text_length_than_the_transformers_is_refused_naming_both()
    {
        using var copy = CopyOf("bfl-tiny-flux-dev");
        File.Copy(Path.Combine(Model("bfl-tiny-flux-schnell"), "t5.opt", "model.onnx"), Path.Combine(copy.Path, "t5.opt", "model.onnx"), overwrite: true);
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(copy.Path, Cpu));
        Assert.Equal(Path.Combine(copy.Path, "transformer.opt", "fp32", "model.onnx"), e.FilePath);
        Assert.Contains("take 32 T5 tokens", e.Message);
        Assert.Contains($"({Path.Combine(copy.Path, "t5.opt", "model.onnx")}) is fixed to 24", e.Message);
    }

    [Fact]
    public void Missing_tokenizers_are_refused_naming_each_file_and_where_it_comes_from()
    {
        using var copy = CopyOf("bfl-tiny-flux-dev");
        File.Delete(Path.Combine(copy.Path, "tokenizer", "merges.txt"));
        Directory.Delete(Path.Combine(copy.Path, "tokenizer_2"), recursive: true);
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(copy.Path, Cpu));
        Assert.Equal(Path.Combine(copy.Path, "tokenizer", "merges.txt"), e.FilePath);
        Assert.Contains("tokenizer/merges.txt (CLIP-L's BPE merges), tokenizer_2/spiece.model (T5's SentencePiece model) are missing", e.Message);
        Assert.Contains("openai/clip-vit-large-patch14", e.Message);
        Assert.Contains("google/t5-v1_1-xxl", e.Message);
    }

    [Fact]
    public void A_transformer_only_in_fp8_and_fp4_is_refused_naming_TensorRT_and_the_folders()
    {
        using var copy = CopyOf("bfl-tiny-flux-dev");
        var transformers = Path.Combine(copy.Path, "transformer.opt");
        Directory.Move(Path.Combine(transformers, "fp32"), Path.Combine(transformers, "fp8"));
        Directory.CreateDirectory(Path.Combine(transformers, "fp4"));
        File.Copy(Path.Combine(transformers, "fp8", "model.onnx"), Path.Combine(transformers, "fp4", "model.onnx"));
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(copy.Path, Cpu));
        Assert.Equal(Path.Combine(transformers, "fp4"), e.FilePath);
        Assert.Contains("transformer.opt/fp4/ and transformer.opt/fp8/", e.Message);
        Assert.Contains("TensorRT", e.Message);
        Assert.Contains("transformer.opt/bf16/", e.Message);
    }

    [Fact]
    public async Task A_transformer_with_bf16_inputs_and_output_runs_converted_at_the_boundary()
    {
        // bfl-tiny-flux-dev-bf16: dev's float32 transformer behind Casts from and to bfloat16 (the bf16 build's I/O), which
        // the CPU runs. Expected: the fp32 folder's latents, off by what rounding the transformer's inputs and output to
        // bfloat16 (8-bit significands, 2⁻⁹ relative) does over 4 steps; measured max |Δ| 0.017 at scale 4.7; tolerance 5%
        // of the scale. Not equal to them: the rounding happened.
        using var copy = CopyOf("bfl-tiny-flux-dev");
        var transformers = Path.Combine(copy.Path, "transformer.opt");
        Directory.Delete(Path.Combine(transformers, "fp32"), recursive: true);
        var bf16 = Path.Combine(transformers, "bf16", "model.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(bf16)!);
        File.Copy(Path.Combine(Model("bfl-tiny-flux-dev-bf16"), "transformer.opt", "bf16", "model.onnx"), bf16);
        using var rounded = StableDiffusionPipeline.Load(copy.Path, Cpu);
        using var full = StableDiffusionPipeline.Load(Model("bfl-tiny-flux-dev"), Cpu);
        Assert.Equal("Black Forest Labs' TensorRT ONNX release (transformer.opt/bf16)", rounded.Info.Layout);
        var request = new GenerationRequest { Prompt = "a photo of a red cat on a beach", Steps = 4, Width = 64, Height = 96, Seed = 7 };
        var expected = (await full.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken)).FinalLatents;
        var actual = (await rounded.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken)).FinalLatents;
        float worst = 0, scale = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            worst = MathF.Max(worst, MathF.Abs(expected[i] - actual[i]));
            scale = MathF.Max(scale, MathF.Abs(expected[i]));
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"bf16 I/O: max |Δ| {worst:G3} at scale {scale:G3}");
        Assert.True(worst <= 0.05f * scale, $"max |Δ| {worst} > 0.05 × {scale}");
        Assert.True(worst > 0, "bf16 rounding left the latents bit-identical");
    }

    [Fact]
    public void A_bf16_transformer_on_the_cpu_is_refused_naming_the_file_the_dtype_and_cuda()
    {
        // refused/flux-bf16-transformer: BFL's transformer inputs in bfloat16 into a bfloat16 MatMul, which ONNX Runtime's
        // CPU provider has no kernel for (build_flux_bfl_test_model.py).
        using var copy = CopyOf("bfl-tiny-flux-dev");
        var transformers = Path.Combine(copy.Path, "transformer.opt");
        Directory.Delete(Path.Combine(transformers, "fp32"), recursive: true);
        var bf16 = Path.Combine(transformers, "bf16", "model.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(bf16)!);
        File.Copy(Path.Combine(Model("refused"), "flux-bf16-transformer", "model.onnx"), bf16);
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(copy.Path, Cpu));
        Assert.Equal(bf16, e.FilePath);
        Assert.Contains("bfloat16", e.Message);
        Assert.Contains("--device cuda", e.Message);
    }

    [Fact]
    public void A_folder_without_a_transformer_is_refused_naming_where_it_belongs()
    {
        using var copy = CopyOf("bfl-tiny-flux-dev");
        Directory.Delete(Path.Combine(copy.Path, "transformer.opt"), recursive: true);
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(copy.Path, Cpu));
        Assert.Equal(Path.Combine(copy.Path, "transformer.opt"), e.FilePath);
        Assert.Contains("transformer.opt/<precision>/model.onnx", e.Message);
    }

    private static TempDirectory CopyOf(string name) => TestModels.CopyOfFolder(Model(name));
}
