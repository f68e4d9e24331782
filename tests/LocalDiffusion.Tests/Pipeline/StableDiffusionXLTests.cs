using LocalDiffusion.Pipeline;
using System.Text.Json;
using LocalDiffusion.Imaging;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.Tests.Schedulers;
using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>
/// SDXL base on models/test/tiny-sdxl (tools/build_sdxl_test_model.py: two tiny CLIP-like encoders, a UNet taking
/// text_embeds and time_ids, SDXL's VAE scaling factor and EulerDiscrete config): the family is detected, and the final
/// latents match diffusers v0.31.0's StableDiffusionXLPipeline steps (TestData/Pipeline/diffusers_sdxl_tiny.json from
/// tools/pipeline_reference/sdxl_tiny.py, the torch twins of the ONNX files): hidden_states[-2] of both encoders,
/// encoder 2's pooled text_embeds, time_ids (h, w, 0, 0, h, w), zeros for the empty negative prompt.
/// </summary>
public class StableDiffusionXLTests
{
    private static readonly PipelineReferenceCases Reference = new("diffusers_sdxl_tiny.json");

    public static TheoryData<string> CaseNames => Reference.Names;

    private static JsonElement Case(string name) => Reference.Case(name);

    /// <summary>A diffusers reference case (sdxl_tiny.py's fields, shared by the Olive and hand-off cases) as a request.</summary>
    internal static GenerationRequest Request(JsonElement c) => new()
    {
        Prompt = c.GetProperty("prompt").GetString()!,
        NegativePrompt = c.GetProperty("negative_prompt").GetString()!,
        Steps = c.GetProperty("steps").GetInt32(),
        GuidanceScale = c.GetProperty("guidance").GetSingle(),
        Seed = c.GetProperty("seed").GetInt64(),
        ImageCount = c.GetProperty("images").GetInt32(),
        Width = c.GetProperty("width").GetInt32(),
        Height = c.GetProperty("height").GetInt32(),
        OriginalSize = Size(c, "original_size"),
        CropsCoordsTopLeft = Crop(c, "crops_coords_top_left"),
        TargetSize = Size(c, "target_size"),
        NegativeOriginalSize = Size(c, "negative_original_size"),
        NegativeCropsCoordsTopLeft = Crop(c, "negative_crops_coords_top_left"),
        NegativeTargetSize = Size(c, "negative_target_size"),
    };

    // The micro-conditioning cases hold diffusers' (height, width) and (top, left) pairs.
    internal static PixelSize? Size(JsonElement c, string key) =>
        c.TryGetProperty(key, out var v) ? new PixelSize(v[1].GetInt32(), v[0].GetInt32()) : null;

    internal static CropCoordinates? Crop(JsonElement c, string key) =>
        c.TryGetProperty(key, out var v) ? new CropCoordinates(v[0].GetInt32(), v[1].GetInt32()) : null;

    [Fact]
    public void TheFamilyIsSdxlBase()
    {
        var info = TestModels.Pipeline("tiny-sdxl").Info;
        Assert.Equal(ModelArchitecture.StableDiffusionXL, info.Family.Architecture);
        Assert.Equal("SDXL base", info.Family.Name);
        Assert.Equal(5f, info.Family.DefaultGuidanceScale); // StableDiffusionXLPipeline's guidance_scale default
        Assert.Equal(0.13025f, info.VaeScalingFactor); // tiny-sdxl/vae_decoder/config.json
        Assert.Contains(info.Components, c => c.Name == "text_encoder_2");
        Assert.Equal(["text_embeds", "time_ids"], info.Family.ExtraUnetInputs);
        Assert.Equal(1024, info.NativeWidth); // SDXL's size when unet/config.json gives no sample_size
        Assert.Equal(1024, info.NativeHeight);
    }

    [Fact]
    public void TheSecondTokenizerPadsWithExclamationId0()
    {
        var tokenizer = ClipTokenizer.Load(Path.Combine(TestModels.PathOf("tiny-sdxl"), "tokenizer_2"));
        var ids = tokenizer.Encode("a red circle on a blue background").Ids;
        // tools/pipeline_reference/sdxl_tiny.py's IDS_2: 21 ids, EOS 1013, then 55 × 0.
        Assert.Equal(1013, ids[21]);
        Assert.All(ids[22..], id => Assert.Equal(0, id));
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task FinalLatentsMatchDiffusers(string name)
    {
        var c = Case(name);
        var request = Request(c);
        var result = await TestModels.Pipeline("tiny-sdxl").GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(request.Steps, result.UnetEvaluations);
        var expected = DiffusersReference.Floats(c.GetProperty("final_latents"));
        var scale = expected.Max(MathF.Abs);
        // The tolerance of the LCM and SD 2.x parity tests: ORT's and torch's float32 kernels differ in the last bits;
        // a wrong hidden state, pooled embedding, time id or negative conditioning is off by O(1).
        Tolerance.AssertClose(expected, result.FinalLatents, name, relative: 0, absolute: 1e-4 * scale);
    }

    [Fact]
    public async Task WithoutForceZerosTheEmptyNegativePromptIsEncoded()
    {
        // force_zeros_for_empty_prompt false: diffusers encodes "" instead, so the CFG case must no longer match.
        using var model = TestModels.CopyOf("tiny-sdxl");
        var index = Path.Combine(model.Path, "model_index.json");
        File.WriteAllText(index, File.ReadAllText(index).Replace("\"force_zeros_for_empty_prompt\": true", "\"force_zeros_for_empty_prompt\": false", StringComparison.Ordinal));
        using var pipeline = StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" });
        var c = Case("sdxl/4_steps_g5");
        var result = await pipeline.GenerateAsync(Request(c), cancellationToken: TestContext.Current.CancellationToken);
        var expected = DiffusersReference.Floats(c.GetProperty("final_latents"));
        var maxDiff = expected.Zip(result.FinalLatents, (a, b) => MathF.Abs(a - b)).Max();
        Assert.True(maxDiff > 1e-2f * expected.Max(MathF.Abs), $"max |Δ| {maxDiff}: the empty negative prompt was still zeroed");
    }

    [Fact]
    public async Task WeightedAndLongPromptsRunWithoutWarningsAndWeightsMatter()
    {
        // SdxlPromptEncoderTests checks the conditioning itself; here the whole pipeline takes it.
        var pipeline = TestModels.Pipeline("tiny-sdxl");
        var request = Request(Case("sdxl/4_steps_g5"));
        var plain = await pipeline.GenerateAsync(request with { PromptWeighting = false }, cancellationToken: TestContext.Current.CancellationToken);
        var weighted = await pipeline.GenerateAsync(request with { Prompt = "a (red:1.5) circle on a [blue] background" }, cancellationToken: TestContext.Current.CancellationToken);
        var longer = await pipeline.GenerateAsync(request with { Prompt = string.Join(", ", Enumerable.Repeat("a red circle on a blue background", 12)) + " BREAK a star" },
            cancellationToken: TestContext.Current.CancellationToken);
        // A plain prompt with weighting off is still diffusers' case.
        var expected = DiffusersReference.Floats(Case("sdxl/4_steps_g5").GetProperty("final_latents"));
        Tolerance.AssertClose(expected, plain.FinalLatents, "plain, weighting off", relative: 0, absolute: 1e-4 * expected.Max(MathF.Abs));
        foreach (var r in new[] { weighted, longer })
        {
            Assert.Empty(r.Warnings);
            Assert.All(r.FinalLatents, v => Assert.True(float.IsFinite(v)));
            Assert.True(r.FinalLatents.Zip(plain.FinalLatents, (a, b) => MathF.Abs(a - b)).Max() > 1e-3f);
        }
    }

    [Fact]
    public async Task MicroConditioningMattersAndIsWrittenToThePng()
    {
        // The micro-conditioning case (diffusers' time ids from non-default original/crop/target sizes, negative ones
        // too) is matched by FinalLatentsMatchDiffusers; without its values the engine lands elsewhere.
        var c = Case("sdxl/micro_conditioning_4_steps_g5");
        var expected = DiffusersReference.Floats(c.GetProperty("final_latents"));
        var pipeline = TestModels.Pipeline("tiny-sdxl");
        var defaults = await pipeline.GenerateAsync(Request(c) with { OriginalSize = null, CropsCoordsTopLeft = null, TargetSize = null },
            cancellationToken: TestContext.Current.CancellationToken);
        var maxDiff = expected.Zip(defaults.FinalLatents, (a, b) => MathF.Abs(a - b)).Max();
        Assert.True(maxDiff > 1e-2f * expected.Max(MathF.Abs), $"max |Δ| {maxDiff}: the prompt's micro-conditioning made no difference");

        var result = await pipeline.GenerateAsync(Request(c), cancellationToken: TestContext.Current.CancellationToken);
        var parameters = PngTextChunks.Read(result.Images[0].EncodePng())["parameters"];
        Assert.Contains("Original size: 192x128, Crop: 16,8, Target size: 80x48, Negative original size: 256x256, Negative crop: 4,0, Negative target size: 96x64", parameters);
    }

    [Theory]
    [InlineData("AestheticScore")]
    [InlineData("NegativeAestheticScore")]
    public async Task AestheticScoresAreRefusedOnTheBase(string property)
    {
        var request = new GenerationRequest { Prompt = "a red circle", Steps = 1, Width = 64, Height = 64 };
        request = property == "AestheticScore" ? request with { AestheticScore = 7 } : request with { NegativeAestheticScore = 2 };
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => TestModels.Pipeline("tiny-sdxl").GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(property, e.ParamName);
        Assert.Contains("refiner", e.Message);
    }

    [Fact]
    public async Task BadMicroConditioningValuesAreRefusedNamingTheProperty()
    {
        var request = new GenerationRequest { Prompt = "a red circle", Steps = 1, Width = 64, Height = 64 };
        var pipeline = TestModels.Pipeline("tiny-sdxl");
        var cases = new (GenerationRequest Request, string Property)[]
        {
            (request with { OriginalSize = new PixelSize(0, 64) }, "OriginalSize"),
            (request with { TargetSize = new PixelSize(64, 20000) }, "TargetSize"),
            (request with { NegativeOriginalSize = new PixelSize(-8, 64) }, "NegativeOriginalSize"),
            (request with { CropsCoordsTopLeft = new CropCoordinates(-1, 0) }, "CropsCoordsTopLeft"),
            (request with { NegativeCropsCoordsTopLeft = new CropCoordinates(0, -16) }, "NegativeCropsCoordsTopLeft"),
            (request with { NegativeTargetSize = new PixelSize(64, 0) }, "NegativeTargetSize"),
        };
        foreach (var (bad, property) in cases)
        {
            var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => pipeline.GenerateAsync(bad, cancellationToken: TestContext.Current.CancellationToken));
            Assert.Equal(property, e.ParamName);
        }
    }

    [Fact]
    public async Task MicroConditioningIsRefusedOnModelsWithoutTimeIds()
    {
        var request = TestModels.Request() with { Steps = 1, OriginalSize = new PixelSize(1024, 1024) };
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => TestModels.Pipeline("tiny").GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal("OriginalSize", e.ParamName);
        Assert.Contains("SDXL", e.Message);
        e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => TestModels.Pipeline("tiny").GenerateAsync(
            TestModels.Request() with { Steps = 1, AestheticScore = 6 }, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal("AestheticScore", e.ParamName);
    }

    [Fact]
    public async Task Img2ImgAndInpaintingRunOnSdxl()
    {
        // The VAE encoder path with SDXL's scaling factor and conditioning: finite latents, and the init image matters.
        var pipeline = TestModels.Pipeline("tiny-sdxl");
        var init = LocalDiffusion.Tests.ImageToImage.Img2ImgDiffusersParityTests.Picture(96, 64);
        var baseRequest = new GenerationRequest { Prompt = "a red circle", Steps = 4, Seed = 5, Width = 96, Height = 64 };
        var text = await pipeline.GenerateAsync(baseRequest, cancellationToken: TestContext.Current.CancellationToken);
        var img2img = await pipeline.GenerateAsync(baseRequest with { InitImage = init, Strength = 0.5f }, cancellationToken: TestContext.Current.CancellationToken);
        var mask = new InitImage(96, 64, [.. Enumerable.Range(0, 96 * 64 * 3).Select(i => (byte)(i / 3 % 96 < 48 ? 255 : 0))]);
        var inpaint = await pipeline.GenerateAsync(baseRequest with { InitImage = init, MaskImage = mask }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(2, img2img.UnetEvaluations); // Strength 0.5 of 4 steps
        foreach (var r in new[] { img2img, inpaint })
        {
            Assert.All(r.FinalLatents, v => Assert.True(float.IsFinite(v)));
            Assert.True(r.FinalLatents.Zip(text.FinalLatents, (a, b) => MathF.Abs(a - b)).Max() > 1e-2f);
        }
    }

    [Fact]
    public void ARefinerFolderWithABaseUnetIsRefusedByName()
    {
        // text_encoder_2 alone makes the folder a refiner's, but tiny-sdxl's UNet takes base's 6 time_ids.
        using var model = TestModels.CopyOf("tiny-sdxl");
        Directory.Delete(Path.Combine(model.Path, "text_encoder"), recursive: true);
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Equal(Path.Combine(model.Path, "unet", "model.onnx"), e.FilePath);
        Assert.Contains("SDXL refiner", e.Message);
    }

    [Fact]
    public void AnEncoderWithoutHiddenStatesOutputsIsNamed()
    {
        // tiny's text encoder has the same width (32) but only last_hidden_state and pooler_output: SDXL cannot read
        // hidden_states[-2] from it.
        using var model = TestModels.CopyOf("tiny-sdxl");
        var encoder = Path.Combine(model.Path, "text_encoder", "model.onnx");
        File.Copy(Path.Combine(TestModels.PathOf("tiny"), "text_encoder", "model.onnx"), encoder, overwrite: true);
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu", UseModelCache = false }));
        Assert.Equal(encoder, e.FilePath);
        Assert.Contains("hidden_states", e.Message);
    }

    [Theory]
    [InlineData(2048, 6, false)] // SDXL base: 768 + 1280 wide, 6 time ids
    [InlineData(1280, 5, true)] // the refiner: text_encoder_2 alone, (original size, crop, aesthetic score)
    [InlineData(-1, 5, true)]
    public void TheRefinerUnetIsToldApartAndRefused(long width, long timeIds, bool refiner)
    {
        var folder = ModelFolder.Open(TestModels.PathOf("tiny-sdxl"));
        var inputs = new Dictionary<string, TensorSpec>
        {
            ["sample"] = new("sample", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [-1, 4, -1, -1]),
            ["encoder_hidden_states"] = new("encoder_hidden_states", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [-1, 77, width]),
            ["text_embeds"] = new("text_embeds", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [-1, 1280]),
            ["time_ids"] = new("time_ids", Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [-1, timeIds]),
        };
        var family = ModelFamily.Detect(folder, inputs, 4, 768, false, new LocalDiffusion.Schedulers.SchedulerConfig());
        Assert.Equal(refiner ? ModelArchitecture.StableDiffusionXLRefiner : ModelArchitecture.StableDiffusionXL, family.Architecture);
        if (refiner) Assert.Contains("refiner", family.Unsupported);
        else Assert.Null(family.Unsupported);
    }

    [Fact]
    public void AMissingSecondTokenizerIsNamed()
    {
        using var model = TestModels.CopyOf("tiny-sdxl");
        Directory.Delete(Path.Combine(model.Path, "tokenizer_2"), recursive: true);
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Equal(Path.Combine(model.Path, "tokenizer_2"), e.FilePath);
    }
}
