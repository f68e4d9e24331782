using System.Text.Json;
using LocalDiffusion.Families;
using LocalDiffusion.Pipeline;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.PromptEncoding;

/// <summary>
/// A1111 prompt weighting on SD 3 and FLUX.1's conditioning. The weighted cases equal TestData/PromptEncoding/flow_weighting.json,
/// made by tools/prompt_reference/flow_weighting.py: the tiny models' torch encoders rebuilt from their seeds, the prompts'
/// A1111 runs written out by hand, each run tokenized on its own (tools/clip_bpe.py, python3-sentencepiece), and A1111's
/// "Original" emphasis applied per encoder in numpy. Tolerance: 2e-6 of the largest value, as the other flow-encoder tests
/// (ONNX Runtime's float32 kernels against torch's, and a float32 mean against one accumulated in double).
/// </summary>
public sealed class FlowPromptWeightingTests : IDisposable
{
    private readonly RunOptions _run = new();

    public void Dispose() => _run.Dispose();

    private static readonly JsonElement Reference =
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("PromptEncoding", "flow_weighting.json"))).RootElement;

    private static int T5Length => Reference.GetProperty("max_sequence_length").GetInt32();

    private static JsonElement Case(string model) =>
        Reference.GetProperty("cases").EnumerateArray().First(c => c.GetProperty("model").GetString() == model);

    private static string Model(string name) => Path.Combine(TestPaths.ModelsDir, "test", name);

    private static float[] Floats(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetSingle())];

    private static int[] Ints(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetInt32())];

    private static StableDiffusionPipeline Load(string name) => StableDiffusionPipeline.Load(Model(name), new PipelineOptions { Device = "cpu", UseModelCache = false });

    private FamilyConditioning Encode(StableDiffusionPipeline pipeline, FlowPrompt prompt)
    {
        var model = (FlowFamilyModel)pipeline.Family;
        using (model.UseConditioner()) return model.Encode([prompt], T5Length, _run);
    }

    private static void Close(float[] expected, float[] actual, string what) =>
        Schedulers.Tolerance.AssertClose(expected, actual, what, relative: 0, absolute: 2e-6 * expected.Max(MathF.Abs));

    [Fact]
    public void Sd3_weights_each_encoder_as_the_reference_does()
    {
        var c = Case("sd3");
        var prompt = FlowPrompt.Read(c.GetProperty("prompt").GetString()!, weighting: true, negative: false);
        // The ids and weights: markup removed, each run tokenized on its own, the escapes' brackets kept as text.
        var (ids, weights) = FlowEmphasis.ClipRows(ClipTokenizer.Load(Path.Combine(Model("tiny-sd3"), "tokenizer")), [prompt], null);
        Assert.Equal(Ints(c.GetProperty("ids")), ids);
        Assert.Equal(Floats(c.GetProperty("weights")), weights[0]);
        var (idsG, _) = FlowEmphasis.ClipRows(ClipTokenizer.Load(Path.Combine(Model("tiny-sd3"), "tokenizer_2")), [prompt], null);
        Assert.Equal(Ints(c.GetProperty("ids_2")), idsG);
        var (idsT5, weightsT5) = FlowEmphasis.T5Rows(T5Tokenizer.Load(Path.Combine(Model("tiny-sd3"), "tokenizer_3")), [prompt], T5Length);
        Assert.Equal(Ints(c.GetProperty("ids_3")), idsT5);
        Assert.Equal(Floats(c.GetProperty("weights_3")), weightsT5[0]);

        using var pipeline = Load("tiny-sd3");
        var conditioning = Encode(pipeline, prompt);
        Close(Floats(c.GetProperty("prompt_embeds")), conditioning.Hidden, "SD 3 prompt_embeds");
        // Pooled projections are the markup-free prompt's, unweighted.
        Close(Floats(c.GetProperty("pooled")), conditioning.Pooled, "SD 3 pooled");
    }

    [Fact]
    public void Flux_weights_t5_as_the_reference_does_and_leaves_clips_pooled_output_unweighted()
    {
        var c = Case("flux");
        var prompt = FlowPrompt.Read(c.GetProperty("prompt").GetString()!, weighting: true, negative: false);
        var (idsT5, weightsT5) = FlowEmphasis.T5Rows(T5Tokenizer.Load(Path.Combine(Model("tiny-flux-dev"), "tokenizer_2")), [prompt], T5Length);
        Assert.Equal(Ints(c.GetProperty("ids_2")), idsT5);
        Assert.Equal(Floats(c.GetProperty("weights_2")), weightsT5[0]);
        var (ids, _) = FlowEmphasis.ClipRows(ClipTokenizer.Load(Path.Combine(Model("tiny-flux-dev"), "tokenizer")), [prompt], null);
        Assert.Equal(Ints(c.GetProperty("ids")), ids);

        foreach (var variant in new[] { "tiny-flux-dev", "tiny-flux-schnell" })
        {
            // dev and schnell share their encoders (tools/build_flux_test_model.py), so one reference serves both.
            using var pipeline = Load(variant);
            var conditioning = Encode(pipeline, prompt);
            Close(Floats(c.GetProperty("prompt_embeds")), conditioning.Hidden, $"{variant} prompt_embeds");
            Close(Floats(c.GetProperty("pooled")), conditioning.Pooled, $"{variant} pooled");
        }
    }

    [Theory]
    [InlineData("tiny-sd3")]
    [InlineData("tiny-flux-dev")]
    public void A_prompt_without_markup_is_encoded_bit_identically_with_weighting_on_or_off(string model)
    {
        using var pipeline = Load(model);
        const string text = "a photo of a red cat on a beach";
        var read = FlowPrompt.Read(text, weighting: true, negative: false);
        Assert.True(read.IsPlain);
        var off = Encode(pipeline, FlowPrompt.Read(text, weighting: false, negative: false));
        var on = Encode(pipeline, read);
        Assert.Equal(off.Hidden, on.Hidden);
        Assert.Equal(off.Pooled, on.Pooled);
        // Through the weighted path (a weight of exactly 1 around the whole prompt): the runs' tokens are the whole
        // prompt's and no row is re-weighted, so the conditioning is still bit-identical.
        var unit = FlowPrompt.Read($"({text}:1.0)", weighting: true, negative: false);
        Assert.False(unit.IsPlain);
        var viaRuns = Encode(pipeline, unit);
        Assert.Equal(off.Hidden, viaRuns.Hidden);
        Assert.Equal(off.Pooled, viaRuns.Pooled);
    }

    [Theory]
    [InlineData("tiny-sd3")]
    [InlineData("tiny-flux-schnell")]
    public void Weighting_off_reads_brackets_as_text_and_on_removes_them(string model)
    {
        using var pipeline = Load(model);
        const string marked = "a photo of a (red cat:1.5) on a beach";
        var off = Encode(pipeline, FlowPrompt.Read(marked, weighting: false, negative: false));
        // Off: exactly the plain-text encoding of the brackets and the number.
        Assert.Equal(Encode(pipeline, FlowPrompt.Plain(marked)).Hidden, off.Hidden);
        var on = Encode(pipeline, FlowPrompt.Read(marked, weighting: true, negative: false));
        Assert.NotEqual(off.Hidden, on.Hidden);
        // On: the markup never reaches the encoders — the pooled output (never weighted) is the bare text's.
        var bare = Encode(pipeline, FlowPrompt.Plain("a photo of a red cat on a beach"));
        Assert.Equal(bare.Pooled, on.Pooled);
        Assert.NotEqual(bare.Hidden, on.Hidden);
    }

    [Theory]
    [InlineData("tiny-sd3")]
    [InlineData("tiny-flux-dev")]
    public void Escaped_brackets_reach_the_encoders_as_literal_brackets(string model)
    {
        using var pipeline = Load(model);
        var escaped = Encode(pipeline, FlowPrompt.Read(@"a \(red cat\) on a \[beach\]", weighting: true, negative: false));
        var literal = Encode(pipeline, FlowPrompt.Plain("a (red cat) on a [beach]"));
        Assert.Equal(literal.Hidden, escaped.Hidden);
        Assert.Equal(literal.Pooled, escaped.Pooled);
    }
}
