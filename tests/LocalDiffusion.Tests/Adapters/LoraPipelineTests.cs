using LocalDiffusion.Pipeline;
using LocalDiffusion.Adapters;

namespace LocalDiffusion.Tests.Adapters;

// tools/build_lora_test_files.py writes models/test/lora/*.safetensors for the tiny model and tiny-lora-merged, the tiny
// model's torch nets with the same LoRA merged in torch and exported: the engine applying the LoRA must give its latents.
public sealed class LoraPipelineTests
{
    private static string Lora(string name) => Path.Combine(TestPaths.ModelsDir, "test", "lora", name);

    private static readonly GenerationRequest Request = new()
    {
        Prompt = "a golden castle", NegativePrompt = "gloomy", Seed = 42, Steps = 4, GuidanceScale = 7.5f, Width = 64, Height = 96,
    };

    private static PipelineOptions Options(string? cache = null) => cache is null
        ? new PipelineOptions { Device = "cpu", UseModelCache = false, LoraDirectory = Path.Combine(TestPaths.ModelsDir, "test", "lora") }
        : new PipelineOptions { Device = "cpu", CacheDirectory = cache, LoraDirectory = Path.Combine(TestPaths.ModelsDir, "test", "lora") };

    private static GenerationResult Generate(StableDiffusionPipeline pipeline, GenerationRequest request) =>
        pipeline.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken).GetAwaiter().GetResult();

    private static float[] Latents(StableDiffusionPipeline pipeline, GenerationRequest request) => Generate(pipeline, request).FinalLatents;

    private static void AssertClose(float[] expected, float[] actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = expected.Max(MathF.Abs);
        var worst = expected.Zip(actual).Max(p => MathF.Abs(p.First - p.Second));
        Assert.True(worst <= tolerance * scale, $"largest difference {worst} at latent scale {scale}");
    }

    [Theory]
    [InlineData("kohya_fp16.safetensors")]
    [InlineData("kohya_bf16.safetensors")]
    [InlineData("peft_fp32.safetensors")]
    public void TheLoraGivesTheTorchMergedModelsLatents(string file)
    {
        using var merged = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-lora-merged"), Options());
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options());
        var expected = Latents(merged, Request);
        var plain = Latents(pipeline, Request);
        var withLora = Latents(pipeline, Request with { Loras = [new LoraAdapter(Lora(file))] });
        AssertClose(expected, withLora, 1e-4f);
        Assert.True(plain.Zip(expected).Max(p => MathF.Abs(p.First - p.Second)) > 1e-2f, "the LoRA must change the picture");
    }

    // The optimised-model cache holds the model's own graph: a LoRA (MatMul/Gemm weights over the cached graph, Conv
    // weights reordered into its NCHWc filters, see CachedConvLoraTests) gives the merged latents whether the cache is cold or warm, and
    // going back to no LoRA gives exactly the never-LoRA latents.
    [Fact]
    public void WorksWithTheModelCacheAndAttentionFusionAndSwitchesBackExactly()
    {
        var cache = Path.Combine(Path.GetTempPath(), "ld-lora-cache-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var merged = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-lora-merged"), Options());
            var expected = Latents(merged, Request);
            float[] never;
            using (var cold = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options(cache))) never = Latents(cold, Request);
            using var warm = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options(cache));
            Assert.Contains(warm.Info.Components, c => c.Cache == LocalDiffusion.Onnx.ModelCacheStatus.Hit);
            AssertClose(expected, Latents(warm, Request with { Prompt = "a golden castle <lora:kohya_fp16:1>" }), 1e-4f);
            Assert.Equal(never, Latents(warm, Request));
            // A LoRA of Linear layers only goes over the cached graph.
            var unetOnly = Latents(warm, Request with { Loras = [new LoraAdapter(Lora("unet_only_fp32.safetensors"))] });
            Assert.NotEqual(never, unetOnly);
            Assert.Equal(never, Latents(warm, Request));
            using var uncached = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options());
            AssertClose(Latents(uncached, Request with { Loras = [new LoraAdapter(Lora("unet_only_fp32.safetensors"))] }), unetOnly, 1e-5f);
        }
        finally
        {
            try { Directory.Delete(cache, true); } catch (IOException) { }
        }
    }

    // A float16 export feeds its weights through Cast nodes: the LoRA reaches them, merged in float32 and stored as float16.
    [Fact]
    public void AFloat16ExportTakesTheLoraThroughItsCasts()
    {
        using var merged = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-lora-merged"), Options());
        using var fp16 = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-fp16"), Options());
        var expected = Latents(merged, Request);
        double Distance(float[] a) => a.Zip(expected).Max(p => Math.Abs(p.First - p.Second));
        var plain = Distance(Latents(fp16, Request));
        var withLora = Distance(Latents(fp16, Request with { Loras = [new LoraAdapter(Lora("kohya_fp16.safetensors"))] }));
        Assert.True(withLora < plain / 10, $"with the LoRA {withLora}, without {plain}");
    }

    [Fact]
    public void WeightZeroIsTheModelAndWeightsScale()
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options());
        var plain = Latents(pipeline, Request);
        Assert.Equal(plain, Latents(pipeline, Request with { Prompt = "a golden castle <lora:peft_fp32:0>" }));
        var half = Latents(pipeline, Request with { Prompt = "a golden castle <lora:peft_fp32:0.5>" });
        var twoHalves = Latents(pipeline, Request with { Prompt = "<lora:kohya_fp16:0.5> a golden castle <lora:peft_fp32:0.5>" });
        var full = Latents(pipeline, Request with { Prompt = "a golden castle <lora:peft_fp32>" });
        AssertClose(full, twoHalves, 1e-4f);
        Assert.NotEqual(full, half);
    }

    [Fact]
    public void AnSdxlLoraOnAnSd15ModelIsRefusedNamingFileAndKey()
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options());
        var e = Assert.ThrowsAny<LoraException>(() => Latents(pipeline, Request with { Loras = [new LoraAdapter(Lora("sdxl_te2.safetensors"))] }));
        Assert.Contains("sdxl_te2.safetensors", e.Message);
        Assert.Contains("lora_te2_blocks_0_attn_q.lora_down.weight", e.Message);
        Assert.Contains("text_encoder_2", e.Message);
        // The pipeline keeps working without it.
        Assert.Equal(Latents(pipeline, Request), Latents(pipeline, Request));
    }

    // A switch releases the current set before merging the next (one set in memory, not two), so what a failure leaves
    // matters: a file refused when read leaves the current set merged; a merge that fails leaves the model's own weights,
    // never a half-merged model.
    [Fact]
    public void AFailedSwitchLeavesTheCurrentSetOrTheModelsOwnWeights()
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options());
        var withLora = Request with { Loras = [new LoraAdapter(Lora("kohya_fp16.safetensors"))] };
        var merged = Latents(pipeline, withLora);
        var identity = pipeline.ActiveAdapterIdentity;
        Assert.ThrowsAny<LoraException>(() => Latents(pipeline, Request with { Loras = [new LoraAdapter(Lora("sdxl_te2.safetensors"))] }));
        Assert.Equal(identity, pipeline.ActiveAdapterIdentity);
        Assert.Equal(merged, Latents(pipeline, withLora));

        // An SD 3 LoRA on FLUX passes the family check (its joint-attention keys are FLUX's too) and fails while merged.
        var flux = new GenerationRequest { Prompt = "a golden castle", Seed = 42, Steps = 2, Width = 64, Height = 48 };
        using var dev = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-flux-dev"), Options());
        using var fresh = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-flux-dev"), Options());
        var fluxLora = flux with { Loras = [new LoraAdapter(Lora("flux_peft_fp32.safetensors"))] };
        var fluxMerged = Latents(dev, fluxLora);
        Assert.NotEqual(Latents(fresh, flux), fluxMerged);
        Assert.ThrowsAny<LoraException>(() => Latents(dev, flux with { Loras = [new LoraAdapter(Lora("sd3_peft_fp32.safetensors"))] }));
        Assert.Equal("", dev.ActiveAdapterIdentity);
        Assert.Equal(Latents(fresh, flux), Latents(dev, flux));
        Assert.Equal(fluxMerged, Latents(dev, fluxLora));
    }

    [Fact]
    public void ALoraForAnotherModelIsRefusedUnlessSkippingIsAsked()
    {
        var sdxlTiny = TestModels.PathOf("tiny-sdxl");
        using var pipeline = StableDiffusionPipeline.Load(sdxlTiny, Options());
        var request = Request with { Width = 64, Height = 64, Loras = [new LoraAdapter(Lora("kohya_fp16.safetensors"))] };
        var e = Assert.ThrowsAny<LoraException>(() => Latents(pipeline, request));
        Assert.Contains("kohya_fp16.safetensors", e.Message);
        Assert.Contains("key \"lora_", e.Message);
        using var lenient = StableDiffusionPipeline.Load(sdxlTiny, Options() with { SkipUnmatchedLoraLayers = true });
        var result = Generate(lenient, request);
        Assert.Contains(result.Warnings, w => w.Contains("skipped", StringComparison.Ordinal));
    }

    [Fact]
    public void PromptTagsAreTakenOutAndUnknownNamesRefused()
    {
        var (prompt, loras) = PromptLoras.Extract("a <lora:style_a:0.7> castle <lora:sub/b> <lyco:c:1.5:0.5>");
        Assert.Equal("a  castle  ", prompt);
        Assert.Equal([("style_a", 0.7f), ("sub/b", 1f), ("c", 1.5f)], loras);
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => PromptLoras.Resolve("nope", Path.Combine(TestPaths.ModelsDir, "test", "lora")));
        Assert.Contains("kohya_fp16", e.Message);
    }
}
