using LocalDiffusion.Embeddings;
using LocalDiffusion.Families;
using LocalDiffusion.Onnx;
using LocalDiffusion.Adapters;
using LocalDiffusion.Pipeline;
using LocalDiffusion.Tests.Schedulers;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.Embeddings;

/// <summary>
/// SD 3's and FLUX.1's conditioning with textual-inversion embeddings equals torch's with the vectors spliced into each CLIP
/// encoder's token-embedding table (tools/build_ti_test_files.py, reference.json, models "sd3" and "flux"): each encoder
/// takes the vectors of its width and reads other names as text, and T5 reads the prompt as written (its rows equal those
/// of a pipeline without embeddings, exactly). Tolerance: 2e-6 of the largest value, as the SD 1.x/XL tests (ONNX Runtime's
/// float32 kernels against torch's).
/// </summary>
public sealed class FlowTextualInversionEncoderTests : IDisposable
{
    private const int T5Length = 8;
    private static readonly string[] AllFiles =
    [
        TiModels.Embedding("sdxl", "xl-pair.safetensors"), TiModels.Embedding("sd15", "a1111-style.pt"), TiModels.Flow("g-only.safetensors"),
        TiModels.Embedding("sd15", "cat-toy.safetensors"), TiModels.Embedding("sd15", "kohya-style.safetensors"),
    ];

    private readonly RunOptions _run = new();

    public void Dispose() => _run.Dispose();

    private static PipelineOptions Options(params string[] files) => new() { Device = "cpu", UseModelCache = false, Embeddings = files };

    // The family's conditioning of one prompt, with the tables extended as a request naming an embedding has them.
    private FamilyConditioning Encode(StableDiffusionPipeline pipeline, string prompt) =>
        Encode(pipeline, LocalDiffusion.PromptEncoding.FlowPrompt.Plain(prompt));

    private FamilyConditioning Encode(StableDiffusionPipeline pipeline, LocalDiffusion.PromptEncoding.FlowPrompt prompt)
    {
        var model = (FlowFamilyModel)pipeline.Family;
        if (model.Embeddings is { } set)
            foreach (var component in model.LoraTargets.Where(c => set.Extends(c.Name)))
            {
                var overrides = new InitializerOverrides("test");
                set.AddTo(overrides, component.Name);
                component.SetOverrides(overrides);
            }
        using (model.UseConditioner()) return model.Encode([prompt], T5Length, _run);
    }

    private static void Close(float[] expected, ReadOnlySpan<float> actual, string what) =>
        Tolerance.AssertClose(expected, actual.ToArray(), what, relative: 0, absolute: 2e-6 * expected.Max(MathF.Abs));

    [Theory]
    [InlineData("plain")]
    [InlineData("pair")]
    [InlineData("single_l")]
    [InlineData("single_g")]
    [InlineData("mixed")]
    public void Sd3ConditioningEqualsTorchsWithTheVectorsSplicedPerEncoder(string name)
    {
        var reference = TiModels.Case("sd3", name);
        var prompt = reference.GetProperty("prompt").GetString()!;
        using var pipeline = StableDiffusionPipeline.Load(TiModels.Sd3, Options(AllFiles));
        var set = pipeline.Family.Embeddings!;
        var vocabulary = TiModels.Reference.GetProperty("vocab").GetInt32();
        TiModels.SameTokens(TiModels.Ints(reference.GetProperty("ids")), set.MatcherFor("text_encoder")!.Encode(ClipTokenizer.Load(Path.Combine(TiModels.Sd3, "tokenizer")), prompt), vocabulary);
        TiModels.SameTokens(TiModels.Ints(reference.GetProperty("ids_2")), set.MatcherFor("text_encoder_2")!.Encode(ClipTokenizer.Load(Path.Combine(TiModels.Sd3, "tokenizer_2")), prompt), vocabulary);

        var c = Encode(pipeline, prompt);
        Assert.Equal((77 + T5Length, 96, 80), (c.SequenceLength, c.Width, c.PooledWidth));
        // Rows 0…76: CLIP-L's penultimate state (32) ‖ CLIP-G's (48) ‖ zeros up to T5's width (96).
        var l = TiModels.Floats(reference.GetProperty("penultimate_1"));
        var g = TiModels.Floats(reference.GetProperty("penultimate_2"));
        var hiddenL = new float[77 * 32];
        var hiddenG = new float[77 * 48];
        for (var k = 0; k < 77; k++)
        {
            c.Hidden.AsSpan(k * 96, 32).CopyTo(hiddenL.AsSpan(k * 32));
            c.Hidden.AsSpan(k * 96 + 32, 48).CopyTo(hiddenG.AsSpan(k * 48));
            Assert.True(c.Hidden.AsSpan(k * 96 + 80, 16).IndexOfAnyExcept(0f) < 0, $"row {k}: the padding to T5's width must stay zero");
        }
        Close(l, hiddenL, $"{name}: CLIP-L hidden_states[-2]");
        Close(g, hiddenG, $"{name}: CLIP-G hidden_states[-2]");
        Close([.. TiModels.Floats(reference.GetProperty("text_embeds_1")), .. TiModels.Floats(reference.GetProperty("text_embeds_2"))], c.Pooled, $"{name}: pooled");

        // T5 reads the text as written, names included: its rows are those of the same prompt without embeddings.
        using var plain = StableDiffusionPipeline.Load(TiModels.Sd3, Options());
        var without = Encode(plain, prompt);
        Assert.Equal(without.Hidden.AsSpan(77 * 96).ToArray(), c.Hidden.AsSpan(77 * 96).ToArray());
    }

    [Fact]
    public void AnEmbeddingCountsItsVectorsTowardTheClipWindowForTheTruncationWarning()
    {
        // The count behind the "longer than CLIP's window" warning (FlowPrompt.Lengths) is made with the row: a name in the
        // window counts the vectors that replace it (as many as the matcher writes negative ids for), and 80 × "red" (one
        // token each in tiny's vocab) 80; past the window a name is not matched and counts as its text's tokens.
        using var pipeline = StableDiffusionPipeline.Load(TiModels.Flux, Options(TiModels.Embedding("sdxl", "xl-pair.safetensors")));
        var tokenizer = ClipTokenizer.Load(Path.Combine(TiModels.Flux, "tokenizer"));
        var vectors = pipeline.Family.Embeddings!.MatcherFor("text_encoder")!.Encode(tokenizer, "xl-pair").Count(id => id < 0);
        Assert.True(vectors >= 2, $"xl-pair's clip_l has {vectors} vectors");
        var reds = string.Join(' ', Enumerable.Repeat("red", 80));
        var early = LocalDiffusion.PromptEncoding.FlowPrompt.Plain("xl-pair " + reds);
        Encode(pipeline, early);
        Assert.Equal(vectors + 80, early.Lengths.ClipTokens);
        var late = LocalDiffusion.PromptEncoding.FlowPrompt.Plain(reds + " xl-pair");
        Encode(pipeline, late);
        Assert.Equal(80 + tokenizer.EncodeTokens("xl-pair").Count, late.Lengths.ClipTokens);
    }

    [Theory]
    [InlineData("plain")]
    [InlineData("pair")]
    [InlineData("single")]
    public void FluxClipLTakesTheVectorsAndT5ReadsTheTextAsWritten(string name)
    {
        var reference = TiModels.Case("flux", name);
        var prompt = reference.GetProperty("prompt").GetString()!;
        using var pipeline = StableDiffusionPipeline.Load(TiModels.Flux, Options(TiModels.Embedding("sdxl", "xl-pair.safetensors"),
            TiModels.Embedding("sd15", "cat-toy.safetensors"), TiModels.Embedding("sd15", "kohya-style.safetensors")));
        var set = pipeline.Family.Embeddings!;
        Assert.Equal(["cat-toy", "kohya-style", "xl-pair"], set.Loaded.Select(e => e.Name));
        TiModels.SameTokens(TiModels.Ints(reference.GetProperty("ids")), set.MatcherFor("text_encoder")!.Encode(ClipTokenizer.Load(Path.Combine(TiModels.Flux, "tokenizer")), prompt),
            TiModels.Reference.GetProperty("vocab").GetInt32());

        var c = Encode(pipeline, prompt);
        Close(TiModels.Floats(reference.GetProperty("pooler_output")), c.Pooled, $"{name}: CLIP-L pooler_output");
        using var plain = StableDiffusionPipeline.Load(TiModels.Flux, Options());
        Assert.Equal(Encode(plain, prompt).Hidden, c.Hidden);
    }

    [Fact]
    public void Sd3TriggerNamesInsideWeightedRunsStillTakeTheirVectors()
    {
        var prompt = TiModels.Case("sd3", "pair").GetProperty("prompt").GetString()!;
        using var pipeline = StableDiffusionPipeline.Load(TiModels.Sd3, Options(AllFiles));
        var plain = Encode(pipeline, prompt);
        // A weight of exactly 1 around the whole prompt takes the weighted path (each run tokenized, trigger names matched
        // among the run's tokens) and must give the plain prompt's rows, embedding vectors included.
        var unit = Encode(pipeline, LocalDiffusion.PromptEncoding.FlowPrompt.Read($"({prompt}:1.0)", weighting: true, negative: false));
        Assert.Equal(plain.Hidden, unit.Hidden);
        Assert.Equal(plain.Pooled, unit.Pooled);
        var weighted = Encode(pipeline, LocalDiffusion.PromptEncoding.FlowPrompt.Read($"({prompt}:1.3)", weighting: true, negative: false));
        Assert.NotEqual(plain.Hidden, weighted.Hidden);
        Assert.Equal(plain.Pooled, weighted.Pooled);
    }
}
