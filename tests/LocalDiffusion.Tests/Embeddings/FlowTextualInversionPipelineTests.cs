using LocalDiffusion.Embeddings;
using LocalDiffusion.Pipeline;

namespace LocalDiffusion.Tests.Embeddings;

/// <summary>
/// Textual inversion through StableDiffusionPipeline on tiny-sd3 and tiny-flux-dev with table CLIP encoders (TiModels): a
/// trigger word changes the picture and a prompt without one gives exactly the latents of a pipeline without embeddings
/// (the model's own sessions again); SD 3's negative prompt takes embeddings (CFG), FLUX-dev's is not used, names and all;
/// the conditioning cache serves a trigger prompt bit-identically; files that fit no CLIP encoder are refused naming the
/// file, the key and the encoders' widths, or skipped from a folder. "Changes" means a latent moves by more than 1e-3.
/// </summary>
public sealed class FlowTextualInversionPipelineTests
{
    private static readonly GenerationRequest Request = new()
    {
        Prompt = "a red circle on a blue background", NegativePrompt = "green", Seed = 7, Steps = 2, GuidanceScale = 4f, Width = 64, Height = 48,
    };

    private static string Folder => Path.Combine(TiModels.Root, "embeddings");

    private static PipelineOptions Options(string? directory = null, params string[] files) =>
        new() { Device = "cpu", UseModelCache = false, EmbeddingsDirectory = directory, Embeddings = files };

    private static GenerationResult Generate(StableDiffusionPipeline pipeline, GenerationRequest request) =>
        pipeline.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken).GetAwaiter().GetResult();

    private static float MaxDifference(float[] a, float[] b) => a.Zip(b).Max(p => MathF.Abs(p.First - p.Second));

    [Fact]
    public void Sd3TakesEmbeddingsInThePromptAndTheNegativeAndNoneIsBitIdentical()
    {
        float[] never;
        using (var plain = StableDiffusionPipeline.Load(TiModels.Sd3, Options())) never = Generate(plain, Request).FinalLatents;
        using var pipeline = StableDiffusionPipeline.Load(TiModels.Sd3, Options(Folder));
        // Every file fits one of SD 3's CLIP encoders: the 32-wide ones CLIP-L, wide (48) CLIP-G, xl-pair both.
        Assert.Equal(["a1111-style", "cat-toy", "kohya-style", "old-paramdict", "toy-bin", "wide", "xl-pair"], pipeline.Embeddings.Select(e => e.Name));
        Assert.Empty(pipeline.SkippedEmbeddings);
        Assert.Equal(never, Generate(pipeline, Request).FinalLatents);
        Assert.Equal("", pipeline.ActiveAdapterIdentity);

        foreach (var prompt in new[] { "a red circle xl-pair on a blue background", "a1111-style on a blue background", "a wide circle" })
        {
            Assert.True(MaxDifference(never, Generate(pipeline, Request with { Prompt = prompt }).FinalLatents) > 1e-3f, $"\"{prompt}\" must change the picture");
            Assert.StartsWith("\nti:", pipeline.ActiveAdapterIdentity);
        }
        Assert.Equal(never, Generate(pipeline, Request).FinalLatents);
        Assert.Equal("", pipeline.ActiveAdapterIdentity);
        // Only in the negative prompt: SD 3's unconditional pass reads it.
        Assert.True(MaxDifference(never, Generate(pipeline, Request with { NegativePrompt = "green kohya-style" }).FinalLatents) > 1e-3f);
    }

    [Fact]
    public void FluxTakesClipLEmbeddingsAndItsUnusedNegativePromptIsNotLookedAt()
    {
        float[] never;
        using (var plain = StableDiffusionPipeline.Load(TiModels.Flux, Options())) never = Generate(plain, Request).FinalLatents;
        using var pipeline = StableDiffusionPipeline.Load(TiModels.Flux, Options(Folder));
        Assert.Equal(["a1111-style", "cat-toy", "kohya-style", "old-paramdict", "toy-bin", "xl-pair"], pipeline.Embeddings.Select(e => e.Name));
        var wide = Assert.Single(pipeline.SkippedEmbeddings);
        Assert.Equal("wide", wide.Name);
        Assert.Contains("48 wide", wide.Reason);
        Assert.Equal(never, Generate(pipeline, Request).FinalLatents);

        Assert.True(MaxDifference(never, Generate(pipeline, Request with { Prompt = "a cat-toy on a blue background" }).FinalLatents) > 1e-3f);
        Assert.True(MaxDifference(never, Generate(pipeline, Request with { Prompt = "xl-pair on a blue background" }).FinalLatents) > 1e-3f);
        // FLUX-dev runs no unconditional pass: the negative prompt is not used (and said so), an embedding in it neither,
        // nor is a skipped one's name there refused.
        foreach (var negative in new[] { "kohya-style", "wide" })
        {
            var result = Generate(pipeline, Request with { NegativePrompt = negative });
            Assert.Equal(never, result.FinalLatents);
            Assert.Contains(result.Warnings, w => w.StartsWith("The negative prompt was not used", StringComparison.Ordinal));
            Assert.Equal("", pipeline.ActiveAdapterIdentity);
        }
        // In the prompt, a skipped file's name is refused saying why.
        var refused = Assert.ThrowsAny<ArgumentException>(() => Generate(pipeline, Request with { Prompt = "a wide circle" }));
        Assert.Contains("the embedding \"wide\"", refused.Message);
        Assert.Contains("wide.safetensors", refused.Message);
    }

    [Fact]
    public void TheConditioningCacheServesATriggerPromptBitIdentically()
    {
        var files = new[] { TiModels.Embedding("sdxl", "xl-pair.safetensors") };
        using var cached = StableDiffusionPipeline.Load(TiModels.Sd3, Options(null, files) with { PromptCacheEntries = 4 });
        using var uncached = StableDiffusionPipeline.Load(TiModels.Sd3, Options(null, files));
        var trigger = Request with { Prompt = "xl-pair on a blue background" };
        var expected = Generate(uncached, trigger).FinalLatents;
        Assert.Equal(expected, Generate(cached, trigger).FinalLatents);
        Assert.Equal(0, cached.PromptCacheHits);
        // The plain request in between (other text: a miss) switches back to the model's own tables; the trigger prompt
        // again is a hit with the same latents: the entry holds the conditioning made with the extended tables, under a key
        // that names them (LoraSwitch.Identity's "ti:" part).
        Assert.Equal(Generate(uncached, Request).FinalLatents, Generate(cached, Request).FinalLatents);
        Assert.Equal(0, cached.PromptCacheHits);
        Assert.Equal(expected, Generate(cached, trigger).FinalLatents);
        Assert.Equal(1, cached.PromptCacheHits);
        // Another seed, the same prompts: served from the cache too.
        Assert.Equal(Generate(uncached, trigger with { Seed = 8 }).FinalLatents, Generate(cached, trigger with { Seed = 8 }).FinalLatents);
        Assert.Equal(2, cached.PromptCacheHits);
    }

    [Theory]
    [InlineData("sd3", "odd-width.safetensors", "emb_params", "its vectors are 40 wide, but this model's CLIP encoders embed tokens as text_encoder (", ") in 32, text_encoder_2 (", ") in 48 (T5 takes no embeddings)")]
    [InlineData("sd3", "narrow-pair.safetensors", "clip_l", "its vectors are 24 wide, but the text_encoder (", ") embeds tokens in 32: it was made for another model")]
    [InlineData("flux", "g-only.safetensors", "emb_params", "its vectors are 48 wide, but this model's CLIP encoders embed tokens as text_encoder (", ") in 32 (T5 takes no embeddings)")]
    [InlineData("flux", "narrow-pair.safetensors", "clip_l", "its vectors are 24 wide, but the text_encoder (", ") embeds tokens in 32: it was made for another model")]
    public void AFileThatFitsNoClipEncoderIsRefusedNamingTheFileKeyAndWidths(string family, string file, string key, params string[] says)
    {
        var model = family == "sd3" ? TiModels.Sd3 : TiModels.Flux;
        var e = Assert.Throws<TextualInversionException>(() => StableDiffusionPipeline.Load(model, Options(null, TiModels.Flow(file))));
        Assert.StartsWith($"{TiModels.Flow(file)}, key \"{key}\": ", e.Message);
        foreach (var part in says) Assert.Contains(part, e.Message);
        Assert.Contains(Path.Combine(model, "text_encoder", "model.onnx"), e.Message);
    }

    [Fact]
    public void EncodersWithoutATokenTableAreRefusedAtLoad()
    {
        // tiny-sd3's and tiny-flux's own CLIP encoders embed tokens through a factorised table: nothing to extend.
        foreach (var model in new[] { "tiny-sd3", "tiny-flux-schnell" })
        {
            var e = Assert.Throws<TextualInversionException>(() => StableDiffusionPipeline.Load(TestModels.PathOf(model), Options(null, TiModels.Embedding("sd15", "cat-toy.safetensors"))));
            Assert.Contains("cat-toy.safetensors", e.Message);
            Assert.Contains("has no token-embedding table", e.Message);
        }
    }
}
