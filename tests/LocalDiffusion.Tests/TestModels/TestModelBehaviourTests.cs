using System.Text.Json;
using static LocalDiffusion.Tests.TestModels.TestInputs;

namespace LocalDiffusion.Tests.TestModels;

/// <summary>
/// The shipped test models run in ONNX Runtime at sizes other than the ones they were exported at, give finite
/// outputs of sensible size, and react to what they should react to (tools/build_test_models.py built them).
/// </summary>
public class TestModelBehaviourTests
{
    private const int Seq = TestModelCatalog.SequenceLength;
    private const int Dim = TestModelCatalog.TextDim;

    public static TheoryData<string> VariantNames() => new(TestModelCatalog.Variants.Select(v => v.Name));

    /// <summary>Batch and latent size to run a variant at: not the export size (2, 8×12) where dims are dynamic.</summary>
    private static (int Batch, int Height, int Width) RunSize(VariantSpec variant) => variant.IsStatic ? (1, 8, 8) : (2, 6, 10);

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void TextEncoderPoolsAtTheEosTokenAndSeesThePrompt(string variantName)
    {
        var variant = TestModelCatalog.Variant(variantName);
        using var encoder = new ComponentRunner(variant, "text_encoder");
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(
            File.ReadAllText(Path.Combine(variant.Folder, "tokenizer", "vocab.json")))!;
        // Row 0: ids of the model's own tokenizer; row 1: "a photo of a cat" in the real CLIP vocab
        // (../shared/clip/tokenizer_cases.json), which the 49408-entry embedding must accept too.
        float[][] rows =
        [
            Ids(vocab["<|startoftext|>"], [600, 700, 800], vocab["<|endoftext|>"]),
            Ids(49406, [320, 1125, 539, 320, 2368], 49407),
        ];
        var hidden = new List<float[]>();
        var pooled = new List<float[]>();
        // A static model takes one row per call.
        float[][][] batches = variant.IsStatic ? [[rows[0]], [rows[1]]] : [rows];
        foreach (var batch in batches)
        {
            var outputs = encoder.Run(new Input("input_ids", batch.SelectMany(r => r).ToArray(), batch.Length, Seq));
            Assert.Equal([batch.Length, Seq, Dim], outputs[0].Shape);
            Assert.Equal([batch.Length, Dim], outputs[1].Shape);
            hidden.AddRange(outputs[0].Data.Chunk(Seq * Dim));
            pooled.AddRange(outputs[1].Data.Chunk(Dim));
        }

        for (var row = 0; row < rows.Length; row++)
        {
            AssertFinite(hidden[row], $"{variantName} last_hidden_state row {row}");
            var eos = Array.IndexOf(rows[row], rows[row].Max());  // CLIP pools at the first largest id
            Assert.Equal(hidden[row].AsSpan(eos * Dim, Dim).ToArray(), pooled[row]);
        }
        Assert.True(MeanAbsDifference(hidden[0], hidden[1]) > 0.01, "different prompts gave the same hidden states");
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void UnetOutputDependsOnSampleTimestepAndPrompt(string variantName)
    {
        var variant = TestModelCatalog.Variant(variantName);
        using var unet = new ComponentRunner(variant, "unet");
        var (batch, h, w) = RunSize(variant);
        long[] latentShape = [batch, 4, h, w];
        var sample = Normal(batch * 4 * h * w, seed: 1);
        var states = Normal(batch * Seq * Dim, seed: 2);
        var timestepShape = unet.TimestepShape(batch);
        var timestepCount = timestepShape.Aggregate(1L, (a, b) => a * b);

        float[] Predict(float[] x, float t, float[] context) => unet.Run(
            new Input("sample", x, latentShape),
            new Input("timestep", Repeat(t, timestepCount), timestepShape),
            new Input("encoder_hidden_states", context, batch, Seq, Dim)).Single().Data;

        var noise = Predict(sample, 500, states);
        AssertFinite(noise, $"{variantName} out_sample");
        Assert.Equal(sample.Length, noise.Length);
        // An epsilon prediction: about unit size, like the noise it predicts.
        Assert.InRange(MeanAbs(noise), 0.1, 10);
        Assert.True(MeanAbsDifference(noise, Predict(sample, 100, states)) > 0.1, "the timestep does not change the output");
        Assert.True(MeanAbsDifference(noise, Predict(sample, 500, Normal(states.Length, seed: 3))) > 0.01,
            "the prompt states do not change the output");
        Assert.True(MeanAbsDifference(noise, Predict(Normal(sample.Length, seed: 4), 500, states)) > 0.1,
            "the sample does not change the output");
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void VaeDecoderGivesImagesInAboutMinusOneToOneThatFollowTheLatents(string variantName)
    {
        var variant = TestModelCatalog.Variant(variantName);
        using var decoder = new ComponentRunner(variant, "vae_decoder");
        var (batch, h, w) = RunSize(variant);
        // Latents as the engine hands them over: unit-size latents divided by SD's scaling factor 0.18215.
        float[] Decode(int seed)
        {
            var output = decoder.Run(new Input("latent_sample", Normal(batch * 4 * h * w, seed, 1 / 0.18215f), batch, 4, h, w)).Single();
            Assert.Equal([batch, 3, 8 * h, 8 * w], output.Shape);
            return output.Data;
        }

        var image = Decode(seed: 5);
        AssertFinite(image, $"{variantName} decoded image");
        var inside = image.Count(x => Math.Abs(x) <= 1) / (double)image.Length;
        Assert.True(inside > 0.9, $"only {inside:P0} of the pixels are within [-1, 1]");
        Assert.True(StandardDeviation(image) > 0.1, "the image is flat");
        Assert.True(MeanAbsDifference(image, Decode(seed: 6)) > 0.05, "different latents decode to the same image");
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void VaeEncoderGivesOneLatentPixelPerEightImagePixels(string variantName)
    {
        var variant = TestModelCatalog.Variant(variantName);
        using var encoder = new ComponentRunner(variant, "vae_encoder");
        var (batch, h, w) = RunSize(variant);
        var image = Normal(batch * 3 * 8 * h * 8 * w, seed: 7, scale: 0.5f);
        var output = encoder.Run(new Input("sample", image, batch, 3, 8 * h, 8 * w)).Single();
        var channels = variant.Component("vae_encoder").Outputs[0].Shape[1];
        Assert.Equal([batch, channels, h, w], output.Shape);
        AssertFinite(output.Data, $"{variantName} latents");
    }

    private static float[] Ids(int bos, int[] tokens, int eos)
    {
        var ids = Enumerable.Repeat((float)eos, Seq).ToArray();
        ids[0] = bos;
        for (var i = 0; i < tokens.Length; i++)
            ids[1 + i] = tokens[i];
        return ids;
    }
}
