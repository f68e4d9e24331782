using LocalDiffusion.Onnx;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.PromptEncoding;

/// <summary>
/// Chunking and weighting on the tiny model's real tokenizer and text encoder, against AUTOMATIC1111's rules
/// (modules/sd_hijack_clip.py: 75-token chunks framed by BOS/EOS, comma backtrack of 20, and EmphasisOriginal in
/// modules/sd_emphasis.py: z·w, then z·(mean before / mean after)), with the expected values derived by hand here.
/// </summary>
public sealed class PromptEncoderTests : IDisposable
{
    private readonly ClipTokenizer _tokenizer = ClipTokenizer.Load(Path.Combine(TestModels.PathOf("tiny"), "tokenizer"));
    private readonly ClipTextEncoder _encoder = new(OnnxComponent.Load("text_encoder",
        Path.Combine(TestModels.PathOf("tiny"), "text_encoder", "model.onnx"), new SessionFactory(ExecutionDevice.Parse("cpu"), 1, 1)));
    private readonly RunOptions _run = new();

    private PromptEncoder Encoder(bool dynamic = true) => new(_tokenizer, _encoder, "text_encoder", dynamic);

    private int Single(string word)
    {
        var ids = _tokenizer.EncodeTokens(word);
        Assert.Single(ids); // the test's prompts are built from one-token words
        return ids[0];
    }

    [Theory]
    [InlineData("a red circle on a blue background")]
    [InlineData("")]
    [InlineData("ratio 16:9, a \\(literal\\) word")]
    public void PlainPromptsGiveTodaysIds(string prompt)
    {
        var plain = prompt.Replace("\\", "", StringComparison.Ordinal);
        var (chunks, dropped, _) = Encoder().Tokenize(prompt, weighting: true);
        var chunk = Assert.Single(chunks);
        Assert.Equal(0, dropped);
        Assert.Equal(_tokenizer.Encode(plain).Ids, chunk.Ids);
        Assert.False(chunk.IsWeighted);
    }

    [Fact]
    public void PlainPromptEmbeddingsAreExactlyTheEncodersWithOrWithoutWeighting()
    {
        var timings = new TimingRecorder();
        var on = Encoder().Encode(["a red circle"], 1, weighting: true, [], timings, _run);
        var off = Encoder().Encode(["a red circle"], 1, weighting: false, [], timings, _run);
        var (direct, _) = _encoder.Encode(_tokenizer.Encode("a red circle").Ids, 1, _run);
        Assert.Equal(direct, on.EncoderHiddenStates);
        Assert.Equal(direct, off.EncoderHiddenStates);
        Assert.Equal(77, on.SequenceLength);
    }

    [Fact]
    public void LongPromptsAreChunkedIn75TokenPiecesWithBosAndEos()
    {
        int red = Single("the"), circle = Single("field");
        var prompt = string.Join(" ", Enumerable.Repeat("the field", 60)); // 120 tokens, no comma
        var (chunks, dropped, _) = Encoder().Tokenize(prompt, weighting: true);
        Assert.Equal(0, dropped);
        Assert.Equal(2, chunks.Count);
        var bpe = Enumerable.Range(0, 120).Select(i => i % 2 == 0 ? red : circle).ToArray();
        int[] first = [_tokenizer.BosId, .. bpe[..75], _tokenizer.EosId];
        int[] second = [_tokenizer.BosId, .. bpe[75..], _tokenizer.EosId, .. Enumerable.Repeat(_tokenizer.PadId, 77 - 47)];
        Assert.Equal(first, chunks[0].Ids);
        Assert.Equal(second, chunks[1].Ids);

        // The UNet then gets both chunks' hidden states one after the other: 154 tokens.
        var inputs = Encoder().Encode([prompt], 2, weighting: true, [], new TimingRecorder(), _run);
        Assert.Equal(154, inputs.SequenceLength);
        Assert.Equal(2 * 154 * inputs.HiddenSize, inputs.EncoderHiddenStates.Length);
        var (direct, hidden) = _encoder.Encode([.. chunks[0].Ids, .. chunks[1].Ids], 2, _run);
        Assert.Equal(direct, inputs.EncoderHiddenStates.AsSpan(0, 154 * hidden).ToArray());
        Assert.Equal(direct, inputs.EncoderHiddenStates.AsSpan(154 * hidden).ToArray());
    }

    [Fact]
    public void AFullChunkBreaksAfterItsLastCommaWithin20Tokens()
    {
        int red = Single("the"), circle = Single("field");
        var comma = _tokenizer.CommaId ?? throw new InvalidOperationException("tiny vocabulary lacks ',</w>'");
        // 70 × "the", ",", 10 × "field": when the 76th token arrives the chunk is full and its comma 5 tokens back, so
        // the 4 "field"s after the comma move to the next chunk (A1111's comma_padding_backtrack = 20).
        var prompt = string.Join(" ", Enumerable.Repeat("the", 70)) + ", " + string.Join(" ", Enumerable.Repeat("field", 10));
        var (chunks, _, _) = Encoder().Tokenize(prompt, weighting: true);
        Assert.Equal(2, chunks.Count);
        Assert.Equal([_tokenizer.BosId, .. Enumerable.Repeat(red, 70), comma, _tokenizer.EosId, .. Enumerable.Repeat(_tokenizer.PadId, 4)], chunks[0].Ids);
        Assert.Equal([_tokenizer.BosId, .. Enumerable.Repeat(circle, 10), _tokenizer.EosId, .. Enumerable.Repeat(_tokenizer.PadId, 65)], chunks[1].Ids);
    }

    [Fact]
    public void BreakStartsANewChunkAndNegativePromptsArePaddedWithTheEmptyChunk()
    {
        var (chunks, _, _) = Encoder().Tokenize("the BREAK field", weighting: true);
        Assert.Equal(2, chunks.Count);
        Assert.Equal(Single("the"), chunks[0].Ids[1]);
        Assert.Equal(Single("field"), chunks[1].Ids[1]);

        var inputs = Encoder().Encode(["", "the BREAK field"], 1, weighting: true, [], new TimingRecorder(), _run);
        Assert.Equal(154, inputs.SequenceLength);
        var hidden = inputs.HiddenSize;
        var (empty, _) = _encoder.Encode(_tokenizer.Encode("").Ids, 1, _run);
        Assert.Equal(empty, inputs.EncoderHiddenStates.AsSpan(0, 77 * hidden).ToArray());
        Assert.Equal(empty, inputs.EncoderHiddenStates.AsSpan(77 * hidden, 77 * hidden).ToArray()); // the pad chunk
    }

    [Fact]
    public void AStatic77CutsAt75TokensWithTodaysWarningAndIgnoresBreak()
    {
        var prompt = string.Join(" ", Enumerable.Repeat("the field", 60));
        var warnings = new List<string>();
        var inputs = Encoder(dynamic: false).Encode([prompt + " BREAK the"], 1, weighting: true, warnings, new TimingRecorder(), _run);
        Assert.Equal(77, inputs.SequenceLength);
        Assert.Equal(2, warnings.Count);
        Assert.Equal("The prompt is longer than 75 tokens: the last 46 token(s) were dropped.", warnings[0]); // 121 − 75
        Assert.Contains("BREAK was ignored", warnings[1]);
    }

    [Fact]
    public void WeightsScaleTokenEmbeddingsAndRestoreTheMean()
    {
        var timings = new TimingRecorder();
        var weighted = Encoder().Encode(["a (forest:1.5) [field]"], 1, weighting: true, [], timings, _run);
        var (z, hidden) = _encoder.Encode(_tokenizer.Encode("a forest field").Ids, 1, _run);
        Assert.Equal(3, _tokenizer.EncodeTokens("a forest field").Count);
        var chunk = Assert.Single(Encoder().Tokenize("a (forest:1.5) [field]", weighting: true).Chunks);
        Assert.Equal(_tokenizer.Encode("a forest field").Ids, chunk.Ids);
        Assert.Equal([1f, 1f, 1.5f, (float)(1 / 1.1), 1f], chunk.Weights[..5]);

        // Positions 0 BOS, 1 "a", 2 "forest" (×1.5), 3 "field" (×1/1.1): every value is z·w·k for one common k (the
        // mean ratio; the tiny encoder's outputs average ≈ 0, so k itself is not a stable number to compare).
        float[] w = [1f, 1f, 1.5f, (float)(1 / 1.1), 1f];
        var k = weighted.EncoderHiddenStates[0] / z[0];
        for (var i = 0; i < z.Length; i++)
        {
            var expected = z[i] * (i / hidden < w.Length ? w[i / hidden] : 1f) * k;
            Assert.Equal(expected, weighted.EncoderHiddenStates[i], Math.Max(1e-6f, Math.Abs(expected) * 1e-4f));
        }
        Assert.Equal(z.Average(v => (double)v), weighted.EncoderHiddenStates.Average(v => (double)v), 1e-6);
    }

    [Fact]
    public void ApplyWeightsMatchesAHandComputedExample()
    {
        // z = [[1,2],[3,4],[5,6]], w = [1,2,1]: z·w = [[1,2],[6,8],[5,6]]; mean 21/6 → 28/6, so × 0.75.
        float[] z = [1, 2, 3, 4, 5, 6];
        PromptEncoder.ApplyWeights(z, [1f, 2f, 1f], 2);
        Assert.Equal([0.75f, 1.5f, 4.5f, 6f, 3.75f, 4.5f], z);
    }

    public void Dispose()
    {
        _encoder.Dispose();
        _run.Dispose();
    }
}
