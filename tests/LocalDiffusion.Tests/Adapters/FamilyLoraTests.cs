using LocalDiffusion.Pipeline;
using System.Buffers.Binary;
using System.Text.Json;
using LocalDiffusion.Adapters;

namespace LocalDiffusion.Tests.Adapters;

// LoRAs on the flow-matching families. tools/build_flow_lora_test_files.py writes models/test/lora/flux_*.safetensors and
// sd3_*.safetensors for tiny-flux-dev and tiny-sd3, and models/test/lora-merged/: the same LoRAs merged in torch
// (W' = W + (alpha/rank)·B·A; kohya's fused qkv/linear1 split by diffusers v0.31.0's converter) into the tiny models' nets
// and exported. The engine applying the LoRA to the plain model must give the merged model's final latents within 1e-4 of
// their largest magnitude (float32 merges in two orders of summation; measured differences are far below).
public sealed class FamilyLoraTests
{
    private static string Lora(string name) => Path.Combine(TestPaths.ModelsDir, "test", "lora", name);

    private static readonly GenerationRequest Flux = new()
    {
        Prompt = "a golden castle", Seed = 42, Steps = 4, GuidanceScale = 3.5f, Width = 64, Height = 64, MaxSequenceLength = 16,
    };

    private static readonly GenerationRequest Sd3 = new()
    {
        Prompt = "a golden castle", NegativePrompt = "gloomy", Seed = 42, Steps = 4, GuidanceScale = 7f, Width = 64, Height = 64, MaxSequenceLength = 16,
    };

    private static PipelineOptions Options => new() { Device = "cpu", UseModelCache = false, LoraDirectory = Path.Combine(TestPaths.ModelsDir, "test", "lora") };

    private static float[] Latents(StableDiffusionPipeline pipeline, GenerationRequest request) =>
        pipeline.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken).GetAwaiter().GetResult().FinalLatents;

    private static void AssertClose(float[] expected, float[] actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = expected.Max(MathF.Abs);
        var worst = expected.Zip(actual).Max(p => MathF.Abs(p.First - p.Second));
        Assert.True(worst <= tolerance * scale, $"largest difference {worst} at latent scale {scale}");
    }

    private static float Difference(float[] a, float[] b) => a.Zip(b).Max(p => MathF.Abs(p.First - p.Second));

    // `file` on `variant` against `variant` with its torch-merged components (models/test/lora-merged/`merged`): within
    // 1e-4 of latent scale; the LoRA must change the picture, and no LoRA afterwards gives the plain latents bit for bit.
    private static void AssertTorchMergedParity(string variant, GenerationRequest request, string file, string merged, params string[] components)
    {
        using var mergedFolder = Merged(variant, merged, components);
        using var mergedPipeline = StableDiffusionPipeline.Load(mergedFolder.Path, Options);
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf(variant), Options);
        var expected = Latents(mergedPipeline, request);
        var plain = Latents(pipeline, request);
        AssertClose(expected, Latents(pipeline, request with { Loras = [new LoraAdapter(Lora(file))] }), 1e-4f);
        Assert.True(Difference(plain, expected) > 1e-2f, "the LoRA must change the picture");
        Assert.Equal(plain, Latents(pipeline, request));
    }

    // The plain tiny model with the torch-merged components laid over it.
    private static TempDirectory Merged(string variant, string merged, params string[] components)
    {
        var copy = TestModels.CopyOf(variant);
        foreach (var component in components)
            File.Copy(Path.Combine(TestPaths.ModelsDir, "test", "lora-merged", merged, component, "model.onnx"), Path.Combine(copy.Path, component, "model.onnx"), overwrite: true);
        return copy;
    }

    [Theory]
    [InlineData("flux_peft_fp32.safetensors")]
    [InlineData("flux_diffusers_fp16.safetensors")]
    [InlineData("flux_kohya_fp16.safetensors")]
    public void AFluxLoraGivesTheTorchMergedModelsLatents(string file) =>
        AssertTorchMergedParity("tiny-flux-dev", Flux, file, "flux-dev", "transformer", "text_encoder");

    // XLabs' format (x-flux processor keys, no alpha; bfloat16, and float16 under diffusion_model.): the reference is
    // tiny-flux-dev's transformer with the file merged in torch after diffusers v0.31.0's _convert_xlabs_flux_lora_to_diffusers
    // (qkv_lora1/2's up split into q, k, v; scale 1), exported (tools/build_flow_lora_test_files.py). Tolerance as above.
    [Theory]
    [InlineData("flux_xlabs_bf16.safetensors")]
    [InlineData("flux_xlabs_prefixed_fp16.safetensors")]
    public void AnXLabsFluxLoraGivesTheTorchMergedModelsLatents(string file) =>
        AssertTorchMergedParity("tiny-flux-dev", Flux, file, "flux-dev-xlabs", "transformer");

    // The CLIP part of the FLUX LoRA matters: the merged transformer alone gives other latents, so the parity above
    // includes the text encoder's merge.
    [Fact]
    public void TheFluxLorasTextEncoderLayerIsApplied()
    {
        using var bothFolder = Merged("tiny-flux-dev", "flux-dev", "transformer", "text_encoder");
        using var transformerFolder = Merged("tiny-flux-dev", "flux-dev", "transformer");
        using var both = StableDiffusionPipeline.Load(bothFolder.Path, Options);
        using var transformerOnly = StableDiffusionPipeline.Load(transformerFolder.Path, Options);
        Assert.True(Difference(Latents(both, Flux), Latents(transformerOnly, Flux)) > 1e-3f, "the text encoder's LoRA layer must change the picture");
    }

    [Theory]
    [InlineData("sd3_peft_fp32.safetensors")]
    [InlineData("sd3_peft_fp16.safetensors")]
    public void AnSd3LoraGivesTheTorchMergedModelsLatents(string file) =>
        AssertTorchMergedParity("tiny-sd3", Sd3, file, "sd3", "transformer");

    // The prompt tag and PipelineOptions.Loras reach the same merge; going back to no LoRA gives exactly (bit for bit) the
    // latents of a pipeline that never had one.
    [Fact]
    public void PromptTagsAndPipelineLorasApplyAndNoLoraAgainIsBitIdentical()
    {
        using var mergedFolder = Merged("tiny-flux-dev", "flux-dev", "transformer", "text_encoder");
        using var merged = StableDiffusionPipeline.Load(mergedFolder.Path, Options);
        var expected = Latents(merged, Flux);
        float[] never;
        using (var fresh = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-flux-dev"), Options)) never = Latents(fresh, Flux);
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-flux-dev"), Options);
        AssertClose(expected, Latents(pipeline, Flux with { Prompt = "a golden castle <lora:flux_kohya_fp16:1>" }), 1e-4f);
        Assert.Equal(never, Latents(pipeline, Flux));
        AssertClose(expected, Latents(pipeline, Flux with { Loras = [new LoraAdapter(Lora("flux_peft_fp32.safetensors"))] }), 1e-4f);
        Assert.Equal(never, Latents(pipeline, Flux with { Loras = [] }));
        using var withOptions = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-flux-dev"), Options with { Loras = [new LoraAdapter(Lora("flux_diffusers_fp16.safetensors"))] });
        AssertClose(expected, Latents(withOptions, Flux), 1e-4f);
        Assert.Equal(never, Latents(pipeline, Flux));
    }

    // The optimised-model cache (on by default) holds the model's own graph: with it cold and warm, the LoRA still gives the
    // merged latents (its weights go over the cached graph only where every replaced initializer is still there), and no
    // LoRA afterwards gives exactly the latents of before.
    [Theory]
    [InlineData("tiny-flux-dev", "flux_kohya_fp16.safetensors")]
    [InlineData("tiny-sd3", "sd3_peft_fp16.safetensors")]
    public void WithTheModelCacheColdAndWarmTheLoraGivesTheMergedLatents(string variant, string file)
    {
        var flux = variant == "tiny-flux-dev";
        var request = flux ? Flux : Sd3;
        using var mergedFolder = flux ? Merged(variant, "flux-dev", "transformer", "text_encoder") : Merged(variant, "sd3", "transformer");
        using var cache = new TempDirectory();
        var cached = Options with { UseModelCache = true, CacheDirectory = cache.Path };
        using var merged = StableDiffusionPipeline.Load(mergedFolder.Path, Options);
        var expected = Latents(merged, request);
        float[] never;
        using (var plain = StableDiffusionPipeline.Load(TestModels.PathOf(variant), Options)) never = Latents(plain, request);
        using (var cold = StableDiffusionPipeline.Load(TestModels.PathOf(variant), cached))
        {
            Assert.Equal(never, Latents(cold, request));
            AssertClose(expected, Latents(cold, request with { Loras = [new LoraAdapter(Lora(file))] }), 1e-4f);
        }
        using var warm = StableDiffusionPipeline.Load(TestModels.PathOf(variant), cached);
        Assert.Contains(warm.Info.Components, c => c.Cache == LocalDiffusion.Onnx.ModelCacheStatus.Hit);
        var warmNever = Latents(warm, request);
        AssertClose(never, warmNever, 1e-5f); // the cached graph is ONNX Runtime's optimised one: close, not necessarily equal
        AssertClose(expected, Latents(warm, request with { Loras = [new LoraAdapter(Lora(file))] }), 1e-4f);
        Assert.Equal(warmNever, Latents(warm, request));
    }

    [Fact]
    public void ALoraForAnotherFamilyIsRefusedNamingTheFileAndWhatItTargets()
    {
        using var flux = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-flux-dev"), Options);
        using var sd3 = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-sd3"), Options);
        var sd15OnFlux = Assert.Throws<LoraForAnotherModelException>(() => Latents(flux, Flux with { Loras = [new LoraAdapter(Lora("peft_fp32.safetensors"))] }));
        Assert.Equal(Lora("peft_fp32.safetensors"), sd15OnFlux.FilePath);
        Assert.Contains("SD 1.x/2.x/XL UNet", sd15OnFlux.Message);
        Assert.Contains("FLUX.1-dev", sd15OnFlux.Message);
        var fluxOnSd3 = Assert.Throws<LoraForAnotherModelException>(() => Latents(sd3, Sd3 with { Prompt = "x <lora:flux_kohya_fp16>" }));
        Assert.Equal(Lora("flux_kohya_fp16.safetensors"), fluxOnSd3.FilePath);
        Assert.Contains("a FLUX.1 transformer, not SD 3", fluxOnSd3.Message);
        // An SD 3 LoRA's joint-attention keys exist in FLUX too: the shapes tell (SD 3's 16 features, FLUX's 32).
        var sd3OnFlux = Assert.Throws<LoraForAnotherModelException>(() => Latents(flux, Flux with { Loras = [new LoraAdapter(Lora("sd3_peft_fp32.safetensors"))] }));
        Assert.Equal(Lora("sd3_peft_fp32.safetensors"), sd3OnFlux.FilePath);
        Assert.Matches(@"maps \d+ → \d+ features, but .*weight \[", sd3OnFlux.Message);
        // SD 1.x refuses a FLUX LoRA the same way.
        using var sd15 = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options);
        var fluxOnSd15 = Assert.Throws<LoraForAnotherModelException>(() => Latents(sd15, new GenerationRequest { Prompt = "x", Seed = 1, Steps = 1, Width = 64, Height = 64, Loras = [new LoraAdapter(Lora("flux_peft_fp32.safetensors"))] }));
        Assert.Contains("targets a FLUX.1 transformer", fluxOnSd15.Message);
        // After the refusals the model is its own.
        using var fresh = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-flux-dev"), Options);
        Assert.Equal(Latents(fresh, Flux), Latents(flux, Flux));
    }

    // SkipUnmatchedLoraLayers (A1111's behaviour) leaves out layers that fit nothing and says so in the result's warnings.
    [Fact]
    public async Task SkippingUnmatchedLayersLeavesAnSd3LorasLayersOutOfFluxWithAWarning()
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-flux-dev"), Options with { SkipUnmatchedLoraLayers = true });
        var never = Latents(pipeline, Flux);
        var result = await pipeline.GenerateAsync(Flux with { Loras = [new LoraAdapter(Lora("sd3_peft_fp32.safetensors"))] }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Contains(result.Warnings, w => w.Contains("sd3_peft_fp32.safetensors: 6 of its 6 transformer layers match no weight", StringComparison.Ordinal));
        Assert.Equal(never, result.FinalLatents);
    }

    public static TheoryData<string, string, string> BadFiles => new()
    {
        // (a key of the file, the key the error names, what it says)
        { "transformer.transformer_blocks.0.attn.to_q.weight", "transformer.transformer_blocks.0.attn.to_q.weight", "not a LoRA key" },
        { "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight", "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight", "Black Forest Labs" },
        // XLabs: a fused qkv up of 32 rows (not 3 × the tiny model's 32), a single block's proj_lora2 whose down takes 32
        // features where proj_out takes 160, a single block's qkv (diffusers v0.31.0 cannot load it) and an unknown layer.
        { "double_blocks.0.processor.qkv_lora1.down.weight", "double_blocks.0.processor.qkv_lora1.down.weight", "up has 32 rows, but the fused module's parts" },
        { "diffusion_model.single_blocks.0.processor.proj_lora2.down.weight", "diffusion_model.single_blocks.0.processor.proj_lora2.down.weight", "maps 32 → 32 features, but" },
        { "single_blocks.0.processor.qkv_lora1.down.weight", "single_blocks.0.processor.qkv_lora1.down.weight", "single-block qkv" },
        { "double_blocks.0.processor.qkv_lora.down.weight", "double_blocks.0.processor.qkv_lora.down.weight", "not an XLabs FLUX LoRA key" },
        { "transformer.transformer_blocks.0.attn.to_nope.lora_A.weight", "transformer.transformer_blocks.0.attn.to_nope.lora_A.weight", "is not a weight of this transformer" },
        { "text_encoder_2.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight", "text_encoder_2.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight", "T5" },
        { "lora_unet_double_blocks_0_img_attn_norm.lora_down.weight", "lora_unet_double_blocks_0_img_attn_norm.lora_down.weight", "no diffusers counterpart" },
        { "lora_unet_single_blocks_0_linear1.lora_down.weight", "lora_unet_single_blocks_0_linear1.lora_down.weight", "up has 8 rows, but the fused module's parts" },
    };

    // Unknown keys, formats the engine does not read, modules the model lacks, T5, a fused module whose up matrix does
    // not split into the model's q, k, v and MLP, and malformed XLabs files: each refused before the first step, naming the file and the key.
    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadLoraFilesAreRefusedNamingFileAndKey(string key, string named, string says)
    {
        using var folder = new TempDirectory();
        var path = Path.Combine(folder.Path, "bad.safetensors");
        var down = key.EndsWith(".lora_A.weight", StringComparison.Ordinal) || key.EndsWith(".lora_down.weight", StringComparison.Ordinal) || key.EndsWith(".down.weight", StringComparison.Ordinal);
        var (upKey, upShape) = key.EndsWith(".lora_A.weight", StringComparison.Ordinal) ? (key.Replace(".lora_A.", ".lora_B.", StringComparison.Ordinal), new long[] { 32, 2 })
            : key.EndsWith(".lora_down.weight", StringComparison.Ordinal) ? (key.Replace(".lora_down.", ".lora_up.", StringComparison.Ordinal), new long[] { 8, 2 })
            : (key.Replace(".down.", ".up.", StringComparison.Ordinal), new long[] { 32, 2 });
        WriteSafetensors(path, down ? [(key, [2, 32]), (upKey, upShape)] : [(key, [32, 32])]);
        using var flux = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-flux-dev"), Options);
        var e = Assert.ThrowsAny<LoraException>(() => Latents(flux, Flux with { Loras = [new LoraAdapter(path)] }));
        Assert.Equal(path, e.FilePath);
        Assert.Equal(named, e.Key);
        Assert.Contains(says, e.Message);
    }

    // A float32 .safetensors file as the safetensors library writes one (values: a ramp, they are never merged).
    private static void WriteSafetensors(string path, (string Name, long[] Shape)[] tensors)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            var bytes = 4L * shape.Aggregate(1L, (a, d) => a * d);
            header[name] = new { dtype = "F32", shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        var file = new byte[8 + json.Length + offset];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)json.Length);
        json.CopyTo(file, 8);
        for (var i = 8 + json.Length; i + 4 <= file.Length; i += 4) BinaryPrimitives.WriteSingleLittleEndian(file.AsSpan(i), 0.01f * (i % 7));
        File.WriteAllBytes(path, file);
    }
}
