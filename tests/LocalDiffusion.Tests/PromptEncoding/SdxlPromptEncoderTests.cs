using LocalDiffusion.Onnx;
using LocalDiffusion.Tests.Schedulers;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.PromptEncoding;

/// <summary>
/// SDXL prompt weighting, chunking and BREAK on models/test/tiny-sdxl's and tiny-sdxl-refiner's real tokenizers and
/// text encoders, against AUTOMATIC1111's rules for SDXL (each of its two text embedders chunks the prompt as
/// modules/sd_hijack_clip.py does and applies "Original" emphasis to its own penultimate hidden state: z·w, then
/// z·(mean before / mean after); the conditioner concatenates them along the feature axis; chunks are concatenated
/// along the sequence axis; the pooled embedding is the first chunk's, <c>zs[0].pooled</c>). Every expected value is
/// computed here from the encoders' raw outputs for ids built here.
/// </summary>
public sealed class SdxlPromptEncoderTests : IDisposable
{
    private static readonly string Base = TestModels.PathOf("tiny-sdxl");
    private readonly ClipTokenizer _tokenizer1 = ClipTokenizer.Load(Path.Combine(Base, "tokenizer"));
    private readonly ClipTokenizer _tokenizer2 = ClipTokenizer.Load(Path.Combine(Base, "tokenizer_2"));
    private readonly ClipTextEncoder _encoder1 = Load(Base, "text_encoder");
    private readonly ClipTextEncoder _encoder2 = Load(Base, "text_encoder_2");
    private readonly RunOptions _run = new();

    private static ClipTextEncoder Load(string model, string part) => new(OnnxComponent.Load(part,
        Path.Combine(model, part, "model.onnx"), new SessionFactory(ExecutionDevice.Parse("cpu"), 1, 1)));

    private SdxlPromptEncoder Encoder(bool dynamic = true, bool forceZeros = true) =>
        new(_tokenizer1, _encoder1, _tokenizer2, _encoder2, "text_encoder_2", forceZeros, dynamic);

    private UNetInputsView Encode(SdxlPromptEncoder encoder, string[] prompts, bool weighting = true, List<string>? warnings = null)
    {
        var inputs = encoder.Encode(prompts, 1, weighting, SdxlTimeIds.For(prompts.Length, refiner: false, 64, 96), warnings ?? [], new TimingRecorder(), _run);
        return new UNetInputsView(inputs.EncoderHiddenStates, inputs.TextEmbeds!, inputs.SequenceLength, inputs.HiddenSize);
    }

    private sealed record UNetInputsView(float[] States, float[] Pooled, int Sequence, int Hidden);

    private int Single(string word)
    {
        var ids = _tokenizer1.EncodeTokens(word);
        Assert.Single(ids); // the test's prompts are built from one-token words
        return ids[0];
    }

    // The raw conditioning of one 77-id row per encoder: penultimate states [77, D] and encoder 2's pooled [P].
    private (float[] Z1, float[] Z2, float[] Pooled) Raw(int[] ids1, int[] ids2)
    {
        var (z1, _, _) = _encoder1.EncodeForXl(ids1, 1, pooled: false, _run);
        var (z2, _, pooled) = _encoder2.EncodeForXl(ids2, 1, pooled: true, _run);
        return (z1, z2, pooled!);
    }

    // [77, D1] and [77, D2] side by side: [77, D1 + D2].
    private static float[] Concat(float[] z1, float[] z2)
    {
        int d1 = z1.Length / 77, d2 = z2.Length / 77;
        var result = new float[77 * (d1 + d2)];
        for (var t = 0; t < 77; t++)
        {
            z1.AsSpan(t * d1, d1).CopyTo(result.AsSpan(t * (d1 + d2)));
            z2.AsSpan(t * d2, d2).CopyTo(result.AsSpan(t * (d1 + d2) + d1));
        }
        return result;
    }

    // EmphasisOriginal written out: z·w per token, then × (mean of z / mean of z·w), in double.
    private static float[] Emphasis(float[] z, double[] weights)
    {
        var hidden = z.Length / 77;
        var scaled = z.Select((v, i) => v * (i / hidden < weights.Length ? weights[i / hidden] : 1.0)).ToArray();
        var ratio = z.Average(v => (double)v) / scaled.Average();
        return scaled.Select(v => (float)(v * ratio)).ToArray();
    }

    // ONNX Runtime's kernels round a batch of several rows differently from a single row in the last bits.
    private static void Close(float[] expected, float[] actual, string what) =>
        Tolerance.AssertClose(expected, actual, what, relative: 0, absolute: 1e-6 * expected.Max(MathF.Abs));

    private static int[] Chunk(int bos, int eos, int pad, IEnumerable<int> tokens)
    {
        int[] ids = [bos, .. tokens, eos];
        return [.. ids, .. Enumerable.Repeat(pad, 77 - ids.Length)];
    }

    [Fact]
    public void APlainPromptGivesDiffusersIdsAndExactlyTheEncodersStates()
    {
        const string prompt = "a red circle on a blue background";
        var (first, second, dropped, _) = Encoder().Tokenize(prompt, weighting: true);
        Assert.Equal(0, dropped);
        Assert.Equal(_tokenizer1.Encode(prompt).Ids, Assert.Single(first).Ids); // pads with <|endoftext|>
        Assert.Equal(_tokenizer2.Encode(prompt).Ids, Assert.Single(second).Ids); // pads with "!" = 0

        var (z1, z2, pooled) = Raw(_tokenizer1.Encode(prompt).Ids, _tokenizer2.Encode(prompt).Ids);
        foreach (var weighting in new[] { true, false })
        {
            var encoded = Encode(Encoder(), [prompt], weighting);
            Assert.Equal(77, encoded.Sequence);
            Assert.Equal(32 + 48, encoded.Hidden);
            Assert.Equal(Concat(z1, z2), encoded.States);
            Assert.Equal(pooled, encoded.Pooled);
        }
    }

    [Fact]
    public void WeightsScaleEachEncodersStatesAndRestoreEachEncodersMean()
    {
        var encoded = Encode(Encoder(), ["a (forest:1.5) [field]"]);
        // The syntax is gone from the ids: they are "a forest field"'s.
        var (z1, z2, pooled) = Raw(_tokenizer1.Encode("a forest field").Ids, _tokenizer2.Encode("a forest field").Ids);
        double[] w = [1, 1, 1.5, 1 / 1.1]; // BOS, a, forest, field
        var expected = Concat(Emphasis(z1, w), Emphasis(z2, w));
        var scale = expected.Max(MathF.Abs);
        // float32 products against the double formula: a few ulps of the largest value.
        Tolerance.AssertClose(expected, encoded.States, "weighted", relative: 0, absolute: 1e-5 * scale);
        Assert.NotEqual(Concat(z1, z2), encoded.States);
        // Each encoder's own mean is restored (one common factor for both halves would not do that).
        Assert.Equal(z1.Average(v => (double)v), Half(encoded.States, 32, 48, first: true).Average(v => (double)v), 1e-6);
        Assert.Equal(z2.Average(v => (double)v), Half(encoded.States, 32, 48, first: false).Average(v => (double)v), 1e-6);
        // The pooled projection is the encoder's, unweighted.
        Assert.Equal(pooled, encoded.Pooled);
    }

    private static float[] Half(float[] states, int d1, int d2, bool first) =>
        [.. Enumerable.Range(0, states.Length / (d1 + d2)).SelectMany(t => states.AsSpan(t * (d1 + d2) + (first ? 0 : d1), first ? d1 : d2).ToArray())];

    [Fact]
    public void ALongPromptIsTwoChunksConcatenatedAlongTheSequenceWithTheFirstChunksPooled()
    {
        int the = Single("the"), field = Single("field");
        var prompt = string.Join(" ", Enumerable.Repeat("the field", 60)); // 120 tokens, no comma
        var bpe = Enumerable.Range(0, 120).Select(i => i % 2 == 0 ? the : field).ToArray();
        int bos = _tokenizer1.BosId, eos = _tokenizer1.EosId;
        var a = Raw(Chunk(bos, eos, _tokenizer1.PadId, bpe[..75]), Chunk(bos, eos, _tokenizer2.PadId, bpe[..75]));
        var b = Raw(Chunk(bos, eos, _tokenizer1.PadId, bpe[75..]), Chunk(bos, eos, _tokenizer2.PadId, bpe[75..]));
        var warnings = new List<string>();
        var encoded = Encode(Encoder(), [prompt], warnings: warnings);
        Assert.Empty(warnings);
        Assert.Equal(154, encoded.Sequence);
        Close([.. Concat(a.Z1, a.Z2), .. Concat(b.Z1, b.Z2)], encoded.States, "two chunks");
        Close(a.Pooled, encoded.Pooled, "pooled");
    }

    [Fact]
    public void BreakStartsAChunkAndTheZeroedEmptyNegativeIsPaddedWithTheEmptyPromptsChunk()
    {
        int bos = _tokenizer1.BosId, eos = _tokenizer1.EosId;
        var the = Raw(Chunk(bos, eos, _tokenizer1.PadId, [Single("the")]), Chunk(bos, eos, _tokenizer2.PadId, [Single("the")]));
        var field = Raw(Chunk(bos, eos, _tokenizer1.PadId, [Single("field")]), Chunk(bos, eos, _tokenizer2.PadId, [Single("field")]));
        var empty = Raw(Chunk(bos, eos, _tokenizer1.PadId, []), Chunk(bos, eos, _tokenizer2.PadId, []));
        var encoded = Encode(Encoder(), ["", "the BREAK field"]);
        Assert.Equal(154, encoded.Sequence);
        var row = 154 * 80;
        // Negative: force_zeros_for_empty_prompt zeroes its one chunk (and pooled); A1111 pads it with the empty prompt.
        Assert.Equal(new float[77 * 80], encoded.States[..(77 * 80)]);
        Close(Concat(empty.Z1, empty.Z2), encoded.States[(77 * 80)..row], "negative padding");
        Assert.Equal(new float[16], encoded.Pooled[..16]);
        // Prompt: "the", then "field", each its own chunk; pooled from the first.
        Close([.. Concat(the.Z1, the.Z2), .. Concat(field.Z1, field.Z2)], encoded.States[row..], "prompt");
        Close(the.Pooled, encoded.Pooled[16..], "prompt pooled");

        // Without force_zeros_for_empty_prompt the negative is the encoded empty prompt, padded the same way.
        var encodedNegative = Encode(Encoder(forceZeros: false), ["", "the BREAK field"]);
        Close([.. Concat(empty.Z1, empty.Z2), .. Concat(empty.Z1, empty.Z2)], encodedNegative.States[..row], "encoded negative");
        Close(empty.Pooled, encodedNegative.Pooled[..16], "encoded negative pooled");
    }

    [Fact]
    public void AStatic77CutsAt75TokensWithTheWarningAndIgnoresBreak()
    {
        var prompt = string.Join(" ", Enumerable.Repeat("the field", 60));
        var warnings = new List<string>();
        var encoded = Encode(Encoder(dynamic: false), [prompt + " BREAK the"], warnings: warnings);
        Assert.Equal(77, encoded.Sequence);
        Assert.Equal(["The prompt is longer than 75 tokens: the last 46 token(s) were dropped.", // 121 − 75
            "The prompt's BREAK was ignored: this UNet takes exactly 77 tokens, so a prompt cannot have more than one chunk."], warnings);
        // The first 75 tokens, as the tokenizers alone cut them.
        var (z1, z2, pooled) = Raw(_tokenizer1.Encode(prompt).Ids, _tokenizer2.Encode(prompt).Ids);
        Assert.Equal(Concat(z1, z2), encoded.States);
        Assert.Equal(pooled, encoded.Pooled);
    }

    [Fact]
    public void WithoutWeightingTheSyntaxIsText()
    {
        const string prompt = "a (red:1.5) circle BREAK";
        var (first, second, _, _) = Encoder().Tokenize(prompt, weighting: false);
        Assert.Equal(_tokenizer1.Encode(prompt).Ids, Assert.Single(first).Ids);
        Assert.Equal(_tokenizer2.Encode(prompt).Ids, Assert.Single(second).Ids);
        Assert.All(second[0].Weights, w => Assert.Equal(1f, w));
    }

    [Fact]
    public void TheRefinerChunksAndWeightsEncoder2Alone()
    {
        var refinerPath = TestModels.PathOf("tiny-sdxl-refiner");
        using var encoder2 = Load(refinerPath, "text_encoder_2");
        var tokenizer2 = ClipTokenizer.Load(Path.Combine(refinerPath, "tokenizer_2"));
        var refiner = new SdxlPromptEncoder(null, null, tokenizer2, encoder2, "text_encoder_2", forceZerosForEmptyPrompt: false, dynamicSequence: true);
        var inputs = refiner.Encode(["(forest:1.5) BREAK field"], 1, true, SdxlTimeIds.For(1, refiner: true, 64, 96), [], new TimingRecorder(), _run);
        Assert.Equal(154, inputs.SequenceLength);
        Assert.Equal(48, inputs.HiddenSize);
        Assert.Equal([64f, 96f, 0f, 0f, 6f], inputs.TimeIds!);
        int bos = tokenizer2.BosId, eos = tokenizer2.EosId, pad = tokenizer2.PadId;
        var (forest, _, pooled) = encoder2.EncodeForXl(Chunk(bos, eos, pad, [Single("forest")]), 1, pooled: true, _run);
        var (field, _, _) = encoder2.EncodeForXl(Chunk(bos, eos, pad, [Single("field")]), 1, pooled: false, _run);
        float[] expected = [.. Emphasis(forest, [1, 1.5]), .. field];
        Tolerance.AssertClose(expected, inputs.EncoderHiddenStates, "refiner", relative: 0, absolute: 1e-5 * expected.Max(MathF.Abs));
        Close(pooled!, inputs.TextEmbeds!, "refiner pooled");
    }

    public void Dispose()
    {
        _encoder1.Dispose();
        _encoder2.Dispose();
        _run.Dispose();
    }
}
