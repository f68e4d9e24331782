using LocalDiffusion.Adapters;
using LocalDiffusion.Embeddings;
using LocalDiffusion.Onnx;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tests.Schedulers;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.Embeddings;

/// <summary>
/// The conditioning of prompts naming embeddings equals torch's with the vectors spliced into the token-embedding table
/// (tools/build_ti_test_files.py, reference.json): the engine's prompt chunking puts the vectors' ids where the name was,
/// and the text encoders run with their tables extended through AddInitializer. Tolerance: 2e-6 of the largest value
/// (ONNX Runtime's float32 kernels against torch's: measured differences are around 1e-7 of it).
/// </summary>
public sealed class TextualInversionEncoderTests : IDisposable
{
    private static readonly string[] Sd15Files = ["a1111-style.pt", "kohya-style.safetensors", "cat-toy.safetensors", "toy-bin.bin"];
    private readonly RunOptions _run = new();
    private readonly List<OnnxComponent> _components = [];

    public void Dispose()
    {
        foreach (var c in _components) c.Dispose();
        _run.Dispose();
    }

    private static ClipTokenizer Tokenizer(string part) => ClipTokenizer.Load(Path.Combine(TestModels.PathOf("tiny-sdxl"), part));

    private (ClipTextEncoder Encoder, OnnxComponent Component) Encoder(string name, string path)
    {
        var component = OnnxComponent.Load(name, path, new SessionFactory(ExecutionDevice.Parse("cpu"), 1, 1));
        _components.Add(component);
        return (new ClipTextEncoder(component), component);
    }

    private static void Extend(EmbeddingSet set, OnnxComponent component)
    {
        var overrides = new InitializerOverrides("test");
        set.AddTo(overrides, component.Name);
        component.SetOverrides(overrides);
    }

    private static void Close(float[] expected, float[] actual, string what) =>
        Tolerance.AssertClose(expected, actual, what, relative: 0, absolute: 2e-6 * expected.Max(MathF.Abs));

    [Theory]
    [InlineData("plain")]
    [InlineData("a1111_two_vectors")]
    [InlineData("kohya_three_vectors_fp16")]
    [InlineData("diffusers_one_vector_and_bin")]
    public void Sd15ConditioningEqualsTorchsWithTheVectorsSpliced(string name)
    {
        var reference = TiModels.Case("sd15", name);
        var tokenizer = Tokenizer("tokenizer");
        var (encoder, component) = Encoder("text_encoder", TiModels.Sd15Encoder);
        var set = EmbeddingSet.Load(Sd15Files.Select(f => TiModels.Embedding("sd15", f)).ToList(), null,
            [new EmbeddingSlot("text_encoder", TiModels.Sd15Encoder, tokenizer, TextualInversion.Single)]);
        Assert.Equal(2 + 3 + 1 + 1, set.Rows);
        Extend(set, component);
        var prompts = new PromptEncoder(tokenizer, encoder, TiModels.Sd15Encoder, dynamicSequence: true) { Embeddings = set.MatcherFor("text_encoder") };
        var prompt = reference.GetProperty("prompt").GetString()!;
        var chunks = prompts.Tokenize(prompt, weighting: true).Chunks;
        TiModels.SameTokens(TiModels.Ints(reference.GetProperty("ids")), Assert.Single(chunks).Ids, tokenizer.VocabularySize);
        // With the trigger in the negative prompt too: [negative, prompt] rows, each its own reference.
        var plain = TiModels.Case("sd15", "plain");
        var inputs = prompts.Encode([prompt, plain.GetProperty("prompt").GetString()!], 1, true, [], new TimingRecorder(), _run);
        var expected = TiModels.Floats(reference.GetProperty("last_hidden_state"));
        Close(expected, inputs.EncoderHiddenStates[..expected.Length], $"{name} (negative prompt row)");
        Close(TiModels.Floats(plain.GetProperty("last_hidden_state")), inputs.EncoderHiddenStates[expected.Length..], "plain prompt row");
    }

    [Theory]
    [InlineData("plain")]
    [InlineData("pair_two_vectors")]
    public void SdxlPairConditionsBothEncodersAndPoolsAtTheEos(string name)
    {
        var reference = TiModels.Case("sdxl", name);
        var path1 = Path.Combine(TiModels.Root, "sdxl", "text_encoder.onnx");
        var path2 = Path.Combine(TiModels.Root, "sdxl", "text_encoder_2.onnx");
        var (tokenizer1, tokenizer2) = (Tokenizer("tokenizer"), Tokenizer("tokenizer_2"));
        var (encoder1, component1) = Encoder("text_encoder", path1);
        var (encoder2, component2) = Encoder("text_encoder_2", path2);
        var set = EmbeddingSet.Load([TiModels.Embedding("sdxl", "xl-pair.safetensors")], null,
            [new EmbeddingSlot("text_encoder", path1, tokenizer1, TextualInversion.ClipL), new EmbeddingSlot("text_encoder_2", path2, tokenizer2, TextualInversion.ClipG)]);
        Extend(set, component1);
        Extend(set, component2);
        var sdxl = new SdxlPromptEncoder(tokenizer1, encoder1, tokenizer2, encoder2, path2, forceZerosForEmptyPrompt: true, dynamicSequence: true);
        sdxl.Chunkers.First!.Embeddings = set.MatcherFor("text_encoder");
        sdxl.Chunkers.Second.Embeddings = set.MatcherFor("text_encoder_2");
        var prompt = reference.GetProperty("prompt").GetString()!;
        var (first, second, _, _) = sdxl.Tokenize(prompt, weighting: true);
        TiModels.SameTokens(TiModels.Ints(reference.GetProperty("ids")), Assert.Single(first).Ids, tokenizer1.VocabularySize);
        TiModels.SameTokens(TiModels.Ints(reference.GetProperty("ids_2")), Assert.Single(second).Ids, tokenizer2.VocabularySize);
        var inputs = sdxl.Encode([prompt], 1, true, [SdxlTimeIds.For(1, refiner: false, 64, 96)[0]], [], new TimingRecorder(), _run);
        var z1 = TiModels.Floats(reference.GetProperty("penultimate_1"));
        var z2 = TiModels.Floats(reference.GetProperty("penultimate_2"));
        var expected = new float[77 * 80];
        for (var t = 0; t < 77; t++)
        {
            z1.AsSpan(t * 32, 32).CopyTo(expected.AsSpan(t * 80));
            z2.AsSpan(t * 48, 48).CopyTo(expected.AsSpan(t * 80 + 32));
        }
        Close(expected, inputs.EncoderHiddenStates, $"{name} hidden states");
        Close(TiModels.Floats(reference.GetProperty("text_embeds")), inputs.TextEmbeds!, $"{name} pooled text_embeds (at the EOS, as A1111)");
    }

    // A1111's tokenize_line: an embedding's vectors never straddle chunks; when they do not fit they start the next one.
    [Fact]
    public void AMultiVectorEmbeddingThatDoesNotFitStartsTheNextChunk()
    {
        var tokenizer = Tokenizer("tokenizer");
        var (encoder, _) = Encoder("text_encoder", TiModels.Sd15Encoder);
        var set = EmbeddingSet.Load([TiModels.Embedding("sd15", "kohya-style.safetensors")], null,
            [new EmbeddingSlot("text_encoder", TiModels.Sd15Encoder, tokenizer, TextualInversion.Single)]);
        var prompts = new PromptEncoder(tokenizer, encoder, TiModels.Sd15Encoder, dynamicSequence: true) { Embeddings = set.MatcherFor("text_encoder") };
        var word = tokenizer.EncodeTokens("red");
        Assert.Single(word);
        var chunks = prompts.Tokenize(string.Join(' ', Enumerable.Repeat("red", 73)) + " kohya-style", weighting: true).Chunks;
        Assert.Equal(2, chunks.Count);
        Assert.Equal(tokenizer.EosId, chunks[0].Ids[74]); // 73 words, then the EOS: the 3 vectors did not fit in 75
        Assert.Equal([-3, -2, -1], chunks[1].Ids[1..4]);
        var fits = prompts.Tokenize(string.Join(' ', Enumerable.Repeat("red", 72)) + " kohya-style", weighting: true).Chunks;
        Assert.Equal([-3, -2, -1], Assert.Single(fits).Ids[73..76]);
    }
}
