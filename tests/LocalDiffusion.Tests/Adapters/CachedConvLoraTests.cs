using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using LocalDiffusion.Adapters;
using LocalDiffusion.Onnx;
using LocalDiffusion.Onnx.Rewriting;
using LocalDiffusion.Pipeline;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.Adapters;

// A LoRA that changes Conv weights opens from the optimised-model cache: the cached "all"-level graph holds those filters
// NCHWc-reordered under other names, and the engine hands the merged filter over in that order once the cached data
// shows the order (CachedConvWeights). Where the order is not the one the engine knows, it optimises the source again.
public sealed class CachedConvLoraTests
{
    private static readonly GenerationRequest Request = new()
    {
        Prompt = "a golden castle", NegativePrompt = "gloomy", Seed = 42, Steps = 4, GuidanceScale = 7.5f, Width = 64, Height = 96,
    };

    private static PipelineOptions Options(string? cache) => cache is null
        ? new PipelineOptions { Device = "cpu", UseModelCache = false }
        : new PipelineOptions { Device = "cpu", CacheDirectory = cache };

    private static float[] Latents(StableDiffusionPipeline pipeline, GenerationRequest request) =>
        pipeline.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken).GetAwaiter().GetResult().FinalLatents;

    private static float WorstRelative(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = expected.Max(MathF.Abs);
        return expected.Zip(actual).Max(p => MathF.Abs(p.First - p.Second)) / scale;
    }

    // tiny's kohya_fp16 LoRA has a LoCon layer on res_high.conv1, a 3×3 Conv 32 → 32 that ONNX Runtime's "all" level
    // turns into an NCHWc Conv (reordered filter reorder_token_1). Expected latents: tiny-lora-merged, the same LoRA merged
    // in torch and exported (tools/build_lora_test_files.py), within 1e-4 of the latent scale as the other LoRA tests
    // (float16 LoRA weights merged in float32 here, in torch there); and the source optimised again with the merged weights
    // (the path taken before, "extended" level: plain Conv kernels instead of NCHWc ones, so only float rounding apart:
    // 1e-5 of the latent scale, as the cache tests allow between the two paths).
    [Fact]
    public void AConvLoraOpensFromTheCacheAndGivesTheMergedLatents()
    {
        using var folder = new TempDirectory();
        var cache = Path.Combine(folder.Path, "cache");
        var lora = new LoraAdapter(Path.Combine(TestPaths.ModelsDir, "test", "lora", "kohya_fp16.safetensors"));
        float[] expected, reoptimised;
        using (var merged = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-lora-merged"), Options(null))) expected = Latents(merged, Request);
        using (var uncached = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options(null)))
        {
            reoptimised = Latents(uncached, Request with { Loras = [lora] });
            Assert.Equal(ModelCacheStatus.NotUsed, uncached.LastOpenCacheStatus("unet"));
        }
        using (var cold = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options(cache))) Latents(cold, Request);

        using var warm = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options(cache));
        var withLora = Latents(warm, Request with { Loras = [lora] });
        Assert.Equal(ModelCacheStatus.Hit, warm.LastOpenCacheStatus("unet"));
        Assert.True(WorstRelative(expected, withLora) <= 1e-4f, $"against the torch-merged model: {WorstRelative(expected, withLora)}");
        Assert.True(WorstRelative(reoptimised, withLora) <= 1e-5f, $"against the re-optimised source: {WorstRelative(reoptimised, withLora)}");
        var plain = Latents(warm, Request);
        Assert.True(WorstRelative(plain, expected) > 1e-2f, "the LoRA must change the picture");
    }

    // tiny-external is tiny with its UNet's weights in an external file (tools/build_test_models.py: the same weights): the
    // merge reads them from that file straight into the merged arrays, the cached graph's check reads them again, and the
    // LoRA's Conv still opens from the cache. Expected: tiny-lora-merged's latents (torch), within 1e-4 as above.
    [Fact]
    public void AnExternalDataExportTakesTheConvLoraFromTheCacheToo()
    {
        using var folder = new TempDirectory();
        var cache = Path.Combine(folder.Path, "cache");
        float[] expected;
        using (var merged = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-lora-merged"), Options(null))) expected = Latents(merged, Request);
        using (var cold = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-external"), Options(cache))) Latents(cold, Request);
        using var warm = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-external"), Options(cache));
        var withLora = Latents(warm, Request with { Loras = [new LoraAdapter(Path.Combine(TestPaths.ModelsDir, "test", "lora", "kohya_fp16.safetensors"))] });
        Assert.Equal(ModelCacheStatus.Hit, warm.LastOpenCacheStatus("unet"));
        Assert.True(WorstRelative(expected, withLora) <= 1e-4f, $"against the torch-merged model: {WorstRelative(expected, withLora)}");
    }

    // tiny-controlnet's UNet (diffusers' UNet2DConditionModel) has SD's 1×1 proj_in/proj_out Convs; the mid block's are
    // 16 → 16, a whole NCHWc block on AVX-512 (16) and AVX2 (8), so the cached graph holds them reordered. A kohya LoRA on
    // both and on a Linear: the cached graph with the reordered merged filters must give bit for bit what ONNX Runtime
    // gives when it reorders the merged weights itself (a copy of the model with the merged weights written in, optimised
    // at the "all" level: the same graph and kernels), and within float rounding (1e-5 of the output scale) the source
    // optimised again at the "extended" level.
    [Fact]
    public void KohyaProjInAndProjOutGoToTheCachedGraphsReorderedFilters()
    {
        using var folder = new TempDirectory();
        var source = Path.Combine(TestModels.PathOf("tiny-controlnet"), "unet", "model.onnx");
        var loraPath = Path.Combine(folder.Path, "proj.safetensors");
        WriteKohyaLora(loraPath,
        [
            ("mid_block_attentions_0_proj_in", [4, 16, 1, 1], [16, 4, 1, 1]),
            ("mid_block_attentions_0_proj_out", [4, 16, 1, 1], [16, 4, 1, 1]),
            ("mid_block_attentions_0_transformer_blocks_0_attn1_to_q", [4, 16], [16, 4]),
        ]);
        using var lora = LoraFile.Open(loraPath);
        using var overrides = LoraMerge.Build("unet", source, [(lora, 1f)], "proj", false, [])!;
        Assert.True(overrides.HasConvWeights);

        var factory = new SessionFactory(ExecutionDevice.Parse("cpu"), 1, 1) { Cache = new ModelCache(Path.Combine(folder.Path, "cache")) };
        float[] plain;
        using (var stored = factory.Create(source, false, null, out var storing, out _))
        {
            Assert.Equal(ModelCacheStatus.Stored, storing);
            plain = RunUnet(stored);
        }
        float[] viaCache;
        using (var session = factory.Create(source, false, overrides, out var status, out _))
        {
            Assert.Equal(ModelCacheStatus.Hit, status);
            viaCache = RunUnet(session);
        }

        // Both proj Convs went in reordered, under the cached graph's own names for their filters.
        var cached = Directory.GetFiles(Path.Combine(folder.Path, "cache"), "model.onnx", SearchOption.AllDirectories).Single();
        using (var form = CachedConvWeights.TryMap(source, cached, overrides, out var reason))
        {
            Assert.True(form is not null, reason);
            Assert.Equal(2, form.Count);
            Assert.All(form.Names, n => Assert.StartsWith("reorder", n, StringComparison.Ordinal));
        }

        var mergedPath = Path.Combine(folder.Path, "merged", "model.onnx");
        WriteMergedCopy(source, overrides, mergedPath);
        var uncached = new SessionFactory(ExecutionDevice.Parse("cpu"), 1, 1);
        using (var merged = uncached.Create(mergedPath, false, null, out _, out _)) Assert.Equal(RunUnet(merged), viaCache);
        using (var reoptimised = uncached.Create(source, false, overrides, out _, out _))
        {
            var again = RunUnet(reoptimised);
            Assert.True(WorstRelative(again, viaCache) <= 1e-5f, $"against the re-optimised source: {WorstRelative(again, viaCache)}");
        }
        Assert.True(WorstRelative(plain, viaCache) > 1e-3f, "the LoRA must change the output");
    }

    // conv_in takes the 4 latent channels, fewer than a block: ONNX Runtime reorders its filter in another layout (output
    // channels blocked only), which the engine does not write. A LoRA on it must not open from the cache: the source is
    // optimised again with the merged weights, giving exactly the latents of a pipeline without a cache.
    [Fact]
    public void AFilterInAnUnknownLayoutFallsBackToOptimisingTheSource()
    {
        using var folder = new TempDirectory();
        var cache = Path.Combine(folder.Path, "cache");
        var loraPath = Path.Combine(folder.Path, "conv_in.safetensors");
        WriteKohyaLora(loraPath, [("conv_in", [2, 4, 3, 3], [32, 2, 1, 1])]);
        var request = Request with { Loras = [new LoraAdapter(loraPath)] };
        float[] reoptimised, plain;
        using (var uncached = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options(null)))
        {
            reoptimised = Latents(uncached, request);
            plain = Latents(uncached, Request);
        }
        using (var cold = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options(cache))) Latents(cold, Request);

        using var warm = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options(cache));
        Assert.Equal(reoptimised, Latents(warm, request));
        Assert.Equal(ModelCacheStatus.NotUsed, warm.LastOpenCacheStatus("unet"));
        Assert.True(WorstRelative(plain, reoptimised) > 1e-3f, "the LoRA must change the picture");

        // Why: the cached filter is not the model's in the blocked layout.
        var source = Path.Combine(TestModels.PathOf("tiny"), "unet", "model.onnx");
        using var lora = LoraFile.Open(loraPath);
        using var overrides = LoraMerge.Build("unet", source, [(lora, 1f)], "conv_in", false, [])!;
        var cached = Directory.GetFiles(cache, "model.onnx", SearchOption.AllDirectories).Single(p => Path.GetFileName(Path.GetDirectoryName(p)!).StartsWith("unet", StringComparison.Ordinal));
        Assert.Null(CachedConvWeights.TryMap(source, cached, overrides, out var reason));
        Assert.Contains("not the model's filter in the blocked layout", reason);
    }

    // sample [1,4,8,8], timestep 500, text [1,8,32] and zero ControlNet residuals (conv_in's and the first resnet's at the
    // latent size, the downsampler's and the second block's at half): tiny-controlnet's UNet inputs.
    private static float[] RunUnet(InferenceSession session)
    {
        var names = new List<string>();
        var values = new List<OrtValue>();
        void Add(string name, float[] data, long[] shape)
        {
            names.Add(name);
            values.Add(OrtValue.CreateTensorValueFromMemory(data, shape));
        }
        Add("sample", Ramp(4 * 8 * 8, 0.7f), [1, 4, 8, 8]);
        Add("encoder_hidden_states", Ramp(8 * 32, 1.3f), [1, 8, 32]);
        for (var i = 0; i < 2; i++) Add($"down_block_{i}_additional_residual", new float[8 * 8 * 8], [1, 8, 8, 8]);
        Add("down_block_2_additional_residual", new float[8 * 4 * 4], [1, 8, 4, 4]); // after the downsampler
        Add("down_block_3_additional_residual", new float[16 * 4 * 4], [1, 16, 4, 4]);
        Add("mid_block_additional_residual", new float[16 * 4 * 4], [1, 16, 4, 4]);
        names.Add("timestep");
        values.Add(OrtValue.CreateTensorValueFromMemory(new long[] { 500 }, [1]));
        try
        {
            using var run = new RunOptions();
            using var outputs = session.Run(run, names, values, [session.OutputMetadata.Keys.First()]);
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    private static float[] Ramp(int count, float frequency)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++) values[i] = MathF.Sin(frequency * i);
        return values;
    }

    // A float32 kohya LoRA file (lora_unet_<module>.lora_down.weight / .lora_up.weight / .alpha = rank / 2), values
    // 0.3·sin of the element index at a frequency per tensor: deterministic and unlike any layout's symmetry.
    private static void WriteKohyaLora(string path, (string Module, long[] Down, long[] Up)[] layers)
    {
        var tensors = new List<(string Name, long[] Shape, float[] Values)>();
        foreach (var (module, down, up) in layers)
        {
            var key = "lora_unet_" + module;
            tensors.Add((key + ".lora_down.weight", down, Ramp((int)down.Aggregate(1L, (a, d) => a * d), 0.37f + tensors.Count).Select(v => 0.3f * v).ToArray()));
            tensors.Add((key + ".lora_up.weight", up, Ramp((int)up.Aggregate(1L, (a, d) => a * d), 0.53f + tensors.Count).Select(v => 0.3f * v).ToArray()));
            tensors.Add((key + ".alpha", [], [down[0] / 2f]));
        }
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape, values) in tensors)
        {
            header[name] = new { dtype = "F32", shape, data_offsets = new[] { offset, offset + 4L * values.Length } };
            offset += 4L * values.Length;
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        var file = new byte[8 + json.Length + offset];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)json.Length);
        json.CopyTo(file, 8);
        var at = 8 + json.Length;
        foreach (var (_, _, values) in tensors)
        {
            MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(file.AsSpan(at));
            at += 4 * values.Length;
        }
        File.WriteAllBytes(path, file);
    }

    // The model with each overridden float32 initializer's raw_data replaced by the merged values, in place (same size).
    private static void WriteMergedCopy(string source, InitializerOverrides overrides, string path)
    {
        var bytes = File.ReadAllBytes(source);
        var graph = OnnxGraph.Parse(bytes);
        foreach (var (name, _, _) in overrides.Entries)
        {
            var reader = new ProtoReader(graph.Initializers[name].Raw);
            var written = false;
            while (reader.More)
            {
                var (field, wire) = reader.Tag();
                if (field != 9 || wire != ProtoReader.LengthDelimited)
                {
                    reader.Skip(wire);
                    continue;
                }
                Assert.True(MemoryMarshal.TryGetArray(reader.ReadBytes(), out var segment));
                MemoryMarshal.AsBytes(overrides.Float32Span(name)).CopyTo(bytes.AsSpan(segment.Offset, segment.Count));
                written = true;
            }
            Assert.True(written, $"{name} has no raw_data in {source}");
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
    }
}
