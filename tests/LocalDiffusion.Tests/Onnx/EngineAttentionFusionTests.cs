using LocalDiffusion.Pipeline;
using LocalDiffusion.Onnx;
using LocalDiffusion.Onnx.Rewriting;
using LocalDiffusion.Tests.Schedulers;

namespace LocalDiffusion.Tests.Onnx;

/// <summary>
/// The engine's own attention fusion (<see cref="PipelineOptions.FuseAttention"/>, on by default): written-out attention
/// becomes com.microsoft.MultiHeadAttention when a model is opened, as tools/fuse_attention.py does to a folder, each
/// block checked by running it beside the fused node first. The references are independent of the rewrite: the
/// models as exported (FuseAttention off), and the Python tool's output (models/test/tiny-fused, made with
/// Debian's python3-onnx and checked there with numpy).
/// </summary>
public class EngineAttentionFusionTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static StableDiffusionPipeline Load(string path, bool fuse, string? cache = null) =>
        StableDiffusionPipeline.Load(path, new PipelineOptions { Device = "cpu", FuseAttention = fuse, UseModelCache = cache is not null, CacheDirectory = cache });

    [Fact]
    public async Task TheEngineFusesTinyAsTheToolDid()
    {
        var request = TestModels.Request() with { Scheduler = "pndm", Steps = 6 };
        using var engine = Load(TestModels.PathOf("tiny"), fuse: true);
        using var tool = Load(TestModels.PathOf("tiny-fused"), fuse: false);
        Assert.StartsWith("fused by the engine when loading (1 of 1 Softmax blocks)", engine.Info.UnetAttention);
        var a = await engine.GenerateAsync(request, cancellationToken: Token);
        var b = await tool.GenerateAsync(request, cancellationToken: Token);
        // The same node with the same heads and scale in the same place: the same arithmetic.
        Assert.Equal(b.FinalLatents, a.FinalLatents);
    }

    [Theory]
    [InlineData("test/tiny", "pndm", 2)]
    [InlineData("shapes", "dpmpp_2m", 1)] // 20 blocks, float16 weights cast to float32
    public async Task FusedAndAsExportedGenerationsAgree(string model, string scheduler, int images)
    {
        var path = Path.Combine(TestPaths.ModelsDir, model);
        var request = TestModels.Request() with { Scheduler = scheduler, ImageCount = images, Steps = 8 };
        using var exported = Load(path, fuse: false);
        using var fused = Load(path, fuse: true);
        Assert.StartsWith("unfused", exported.Info.UnetAttention);
        Assert.StartsWith("fused by the engine", fused.Info.UnetAttention);
        var plain = await exported.GenerateAsync(request, cancellationToken: Token);
        var rewritten = await fused.GenerateAsync(request, cancellationToken: Token);
        // The fused kernel sums the softmax in another order (online, block by block): float32 rounding differs
        // (tiny-fused measured 7e-6 of the latents' scale). Wrong heads, scale or layout are off by O(1).
        var scale = plain.FinalLatents.Max(MathF.Abs);
        Tolerance.AssertClose(plain.FinalLatents, rewritten.FinalLatents, model, relative: 0, absolute: 1e-4 * scale);
        for (var i = 0; i < images; i++)
            Assert.True(plain.Images[i].Rgb.Zip(rewritten.Images[i].Rgb).All(p => Math.Abs(p.First - p.Second) <= 1), "pixels differ by more than one level");
    }

    [Fact]
    public void TheCheckRefusesABlockReadWithTheWrongHeadsOrScale()
    {
        var graph = OnnxGraph.Parse(File.ReadAllBytes(Path.Combine(TestPaths.ModelsDir, "shapes", "unet", "model.onnx")));
        var blocks = new AttentionBlocks(graph).Find(_ => { });
        Assert.Equal(20, blocks.Count);
        var block = blocks[0];
        var log = new List<string>();
        Assert.True(AttentionFusion.Agrees(graph, block, log.Add), string.Join("\n", log));
        Assert.False(AttentionFusion.Agrees(graph, block with { Heads = block.Heads * 2 }, log.Add));
        Assert.False(AttentionFusion.Agrees(graph, block with { Scale = block.Scale * 2 }, log.Add));
        Assert.All(log, line => Assert.Contains("not plain multi-head attention", line));
    }

    [Theory]
    [InlineData(64)]
    [InlineData(128)]
    public async Task AVaeDecodersMidBlockAttentionIsFusedToo(int side)
    {
        // diffusers' AutoencoderKL decoder at a tiny width (tools/build_vae_attention_test_decoder.py): one head over every
        // latent pixel, the attention whose scores a real VAE keeps in memory at large sizes.
        var decoder = Path.Combine(TestPaths.ModelsDir, "test", "vae", "attention");
        var fused = AttentionFusion.TryFuse(Path.Combine(decoder, "model.onnx"));
        Assert.Equal((1, 1), (fused?.Fused, fused?.Candidates));
        var request = TestModels.Request() with { Steps = 4, Scheduler = "euler", Width = side, Height = side };
        GenerationResult Decode(bool fuse)
        {
            // tiny-fused's UNet is fused as exported, so the option changes only the decoder.
            using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-fused"),
                new PipelineOptions { Device = "cpu", UseModelCache = false, FuseAttention = fuse, VaeDecoderPath = decoder });
            return pipeline.GenerateAsync(request, cancellationToken: Token).GetAwaiter().GetResult();
        }
        var (plain, rewritten) = (Decode(false), Decode(true));
        Assert.Equal(plain.FinalLatents, rewritten.FinalLatents);
        Assert.True(plain.Images[0].Rgb.Zip(rewritten.Images[0].Rgb).All(p => Math.Abs(p.First - p.Second) <= 1), "pixels differ by more than one level");
        await Task.CompletedTask;
    }

    [Fact]
    public void CausallyMaskedTextEncoderAttentionIsLeftAlone()
    {
        // CLIP's text encoder adds a causal mask before its Softmax: not plain multi-head attention.
        var encoder = Path.Combine(TestPaths.ModelsDir, "shapes", "text_encoder", "model.onnx");
        Assert.Equal(3, OnnxFileScan.TryRead(encoder)!.SoftmaxNodes);
        Assert.Null(AttentionFusion.TryFuse(encoder));
    }

    [Fact]
    public async Task TheCacheKeepsFusedAndAsExportedGraphsApart()
    {
        using var cache = new TempDirectory();
        var request = TestModels.Request() with { Steps = 4, Scheduler = "euler" };
        GenerationResult first;
        using (var stored = Load(TestModels.PathOf("tiny"), fuse: true, cache.Path))
        {
            Assert.Equal(ModelCacheStatus.Stored, stored.Info.Components.Single(c => c.Name == "unet").Cache);
            first = await stored.GenerateAsync(request, cancellationToken: Token);
        }
        using (var hit = Load(TestModels.PathOf("tiny"), fuse: true, cache.Path))
        {
            Assert.Equal(ModelCacheStatus.Hit, hit.Info.Components.Single(c => c.Name == "unet").Cache);
            Assert.StartsWith("fused by the engine when loading (1 of 1", hit.Info.UnetAttention);
            var again = await hit.GenerateAsync(request, cancellationToken: Token);
            Assert.Equal(first.FinalLatents, again.FinalLatents);
        }
        using var exported = Load(TestModels.PathOf("tiny"), fuse: false, cache.Path);
        Assert.Equal(ModelCacheStatus.Stored, exported.Info.Components.Single(c => c.Name == "unet").Cache);
        Assert.StartsWith("unfused", exported.Info.UnetAttention);
    }
}

/// <summary>The protobuf layer under the rewrite: what it does not change, it writes back byte for byte.</summary>
public class OnnxGraphRoundTripTests
{
    [Theory]
    [InlineData("test/tiny/unet")]
    [InlineData("test/tiny-external/unet")]
    [InlineData("shapes/text_encoder")]
    [InlineData("shapes/vae_decoder")]
    public void AModelWrittenBackUnchangedIsTheSameFile(string component)
    {
        var bytes = File.ReadAllBytes(Path.Combine(TestPaths.ModelsDir, component, "model.onnx"));
        var graph = OnnxGraph.Parse(bytes);
        Assert.NotEmpty(graph.Nodes);
        var written = graph.Write(graph.Nodes.Select(n => n.Raw).ToList(), graph.Initializers.Keys.ToHashSet(), []);
        Assert.Equal(bytes, written);
    }
}
