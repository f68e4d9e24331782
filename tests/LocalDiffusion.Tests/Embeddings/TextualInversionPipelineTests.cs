using LocalDiffusion.Pipeline;
using LocalDiffusion.Adapters;
using LocalDiffusion.Embeddings;

namespace LocalDiffusion.Tests.Embeddings;

/// <summary>
/// Textual inversion through StableDiffusionPipeline on tiny / tiny-sdxl with table text encoders (TiModels): a prompt that
/// names an embedding changes the picture; one that names none gives exactly the latents of a pipeline without
/// embeddings, before and after (bit-identical: the model's own sessions are used again); files that do not fit are
/// refused naming the file and key.
/// </summary>
public sealed class TextualInversionPipelineTests
{
    private static readonly GenerationRequest Request = new()
    {
        Prompt = "a red circle on a blue background", NegativePrompt = "green", Seed = 7, Steps = 3, GuidanceScale = 7.5f, Width = 64, Height = 64,
    };

    private static PipelineOptions Options(string? directory = null, params string[] files) =>
        new() { Device = "cpu", UseModelCache = false, EmbeddingsDirectory = directory, Embeddings = files };

    private static float[] Latents(StableDiffusionPipeline pipeline, GenerationRequest request) =>
        pipeline.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken).GetAwaiter().GetResult().FinalLatents;

    private static float MaxDifference(float[] a, float[] b) => a.Zip(b).Max(p => MathF.Abs(p.First - p.Second));

    [Fact]
    public void AnEmbeddingInThePromptOrNegativeChangesThePictureAndNoneIsBitIdentical()
    {
        float[] never;
        using (var plain = StableDiffusionPipeline.Load(TiModels.Sd15, Options())) never = Latents(plain, Request);
        using var pipeline = StableDiffusionPipeline.Load(TiModels.Sd15, Options(Path.Combine(TiModels.Root, "embeddings", "sd15")));
        Assert.Equal(["a1111-style", "cat-toy", "kohya-style", "old-paramdict", "toy-bin"], pipeline.Embeddings.Select(e => e.Name));
        Assert.Equal(never, Latents(pipeline, Request));
        Assert.Equal("", pipeline.ActiveAdapterIdentity);

        var withEmbedding = Latents(pipeline, Request with { Prompt = "a red circle a1111-style on a blue background" });
        Assert.StartsWith("\nti:", pipeline.ActiveAdapterIdentity);
        Assert.True(MaxDifference(never, withEmbedding) > 1e-3f, "the embedding must change the picture");

        // Back to no embedding: the model's own weights, exactly.
        Assert.Equal(never, Latents(pipeline, Request));
        Assert.Equal("", pipeline.ActiveAdapterIdentity);

        // Only in the negative prompt (a negative embedding): the tables are extended for it too.
        var negative = Latents(pipeline, Request with { NegativePrompt = "green kohya-style" });
        Assert.StartsWith("\nti:", pipeline.ActiveAdapterIdentity);
        Assert.True(MaxDifference(never, negative) > 1e-3f, "the negative embedding must change the picture");
    }

    [Fact]
    public void SdxlUsesThePairAndRefusesOneTensorEmbeddings()
    {
        var folder = Path.Combine(TiModels.Root, "embeddings");
        float[] never;
        using (var plain = StableDiffusionPipeline.Load(TiModels.Sdxl, Options())) never = Latents(plain, Request);
        using var pipeline = StableDiffusionPipeline.Load(TiModels.Sdxl, Options(Path.Combine(folder, "sdxl")));
        Assert.Equal("xl-pair", Assert.Single(pipeline.Embeddings).Name);
        Assert.Equal(never, Latents(pipeline, Request));
        Assert.True(MaxDifference(never, Latents(pipeline, Request with { Prompt = "xl-pair on a blue background" })) > 1e-3f);
        Assert.Equal(never, Latents(pipeline, Request));

        var e = Assert.Throws<TextualInversionException>(() => StableDiffusionPipeline.Load(TiModels.Sdxl, Options(null, TiModels.Embedding("sd15", "kohya-style.safetensors"))));
        Assert.Contains("kohya-style.safetensors, key \"emb_params\"", e.Message);
        Assert.Contains("SDXL model needs clip_l and clip_g", e.Message);
    }

    [Fact]
    public void FilesThatDoNotFitAreRefusedNamingFileAndKeyOrSkippedFromTheFolder()
    {
        var wide = TiModels.Embedding("bad", "wide.safetensors");
        var e = Assert.Throws<TextualInversionException>(() => StableDiffusionPipeline.Load(TiModels.Sd15, Options(null, wide)));
        Assert.Contains("wide.safetensors, key \"emb_params\"", e.Message);
        Assert.Contains("its vectors are 48 wide, but the text_encoder", e.Message);
        Assert.Contains("embeds tokens in 32", e.Message);

        var pair = Assert.Throws<TextualInversionException>(() => StableDiffusionPipeline.Load(TiModels.Sd15, Options(null, TiModels.Embedding("sdxl", "xl-pair.safetensors"))));
        Assert.Contains("this is an SDXL embedding (clip_l and clip_g); this model has one text encoder", pair.Message);

        // The tiny model's factorised embedding has no table to extend: said at load, naming the encoder.
        var noTable = Assert.Throws<TextualInversionException>(() => StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), Options(null, TiModels.Embedding("sd15", "cat-toy.safetensors"))));
        Assert.Contains("has no token-embedding table", noTable.Message);

        // From a folder, as A1111: skipped with the reason, and a prompt that names one is refused saying why.
        var truncated = Path.Combine(Path.GetTempPath(), $"ld-ti-dir-{Guid.NewGuid():N}");
        Directory.CreateDirectory(truncated);
        File.Copy(wide, Path.Combine(truncated, "wide.safetensors"));
        File.Copy(TiModels.Embedding("sd15", "cat-toy.safetensors"), Path.Combine(truncated, "cat-toy.safetensors"));
        var pt = File.ReadAllBytes(TiModels.Embedding("sd15", "a1111-style.pt"));
        File.WriteAllBytes(Path.Combine(truncated, "cut.pt"), pt[..(pt.Length - 100)]);
        File.WriteAllText(Path.Combine(truncated, "notes.txt"), "not an embedding");
        using var pipeline = StableDiffusionPipeline.Load(TiModels.Sd15, Options(truncated));
        Assert.Equal("cat-toy", Assert.Single(pipeline.Embeddings).Name);
        Assert.Equal(["cut", "wide"], pipeline.SkippedEmbeddings.Select(s => s.Name).Order());
        var refused = Assert.ThrowsAny<ArgumentException>(() => Latents(pipeline, Request with { NegativePrompt = "wide" }));
        Assert.Contains("the embedding \"wide\"", refused.Message);
        Assert.Contains("48 wide", refused.Message);
        Assert.Contains("cut.pt", Assert.ThrowsAny<ArgumentException>(() => Latents(pipeline, Request with { Prompt = "a cut circle" })).Message);
    }
}
