using static LocalDiffusion.Tests.TestModels.TestInputs;

namespace LocalDiffusion.Tests.TestModels;

/// <summary>
/// All variants carry the same weights behind different interfaces (tools/build_test_models.py), so at the one
/// size they all accept (batch 1, latents 8×8) they must compute the same thing; a rebuild that breaks one
/// variant's input handling (a scalar timestep, int64 ids, external data) shows up here.
/// </summary>
public class TestModelVariantAgreementTests
{
    private const int Seq = TestModelCatalog.SequenceLength;
    private const int Dim = TestModelCatalog.TextDim;

    // float32 variants differ only by operator order: 1e-4 absolute. tiny-fp16 rounds weights, inputs and outputs
    // to float16 (11-bit mantissa): within 1% of the output's mean size (about 0.2% seen at build time).
    private const double Float32Tolerance = 1e-4;
    private const double Float16RelativeTolerance = 0.01;

    [Fact]
    public void TextEncodersAgree() => AssertAgree("text_encoder", _ =>
        [new Input("input_ids", ClipIds(), 1, Seq)]);

    [Fact]
    public void UnetsAgree() => AssertAgree("unet", runner =>
    [
        new Input("sample", Normal(4 * 8 * 8, seed: 11), 1, 4, 8, 8),
        new Input("timestep", [500], runner.TimestepShape(1)),
        new Input("encoder_hidden_states", Normal(Seq * Dim, seed: 12), 1, Seq, Dim),
    ]);

    [Fact]
    public void VaeDecodersAgree() => AssertAgree("vae_decoder", _ =>
        [new Input("latent_sample", Normal(4 * 8 * 8, seed: 13, scale: 1 / 0.18215f), 1, 4, 8, 8)]);

    private static void AssertAgree(string component, Func<ComponentRunner, Input[]> inputs)
    {
        var reference = RunAll(TestModelCatalog.Variant("tiny"), component, inputs);
        foreach (var variant in TestModelCatalog.Variants.Where(v => v.Name != "tiny"))
        {
            var outputs = RunAll(variant, component, inputs);
            for (var i = 0; i < reference.Count; i++)
            {
                var difference = MaxAbsDifference(reference[i].Data, outputs[i].Data);
                var tolerance = variant.IsFloat16 ? Float16RelativeTolerance * MeanAbs(reference[i].Data) : Float32Tolerance;
                Assert.True(difference <= tolerance,
                    $"{variant.Name}/{component} output {i} differs from tiny's by up to {difference:G3} (tolerance {tolerance:G3})");
            }
        }
    }

    private static IReadOnlyList<Output> RunAll(VariantSpec variant, string component, Func<ComponentRunner, Input[]> inputs)
    {
        using var runner = new ComponentRunner(variant, component);
        return runner.Run(inputs(runner));
    }

    private static double MaxAbsDifference(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (var i = 0; i < a.Length; i++)
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    /// <summary>"a photo of a cat" in the real CLIP vocab (../shared/clip/tokenizer_cases.json), EOS-padded.</summary>
    private static float[] ClipIds()
    {
        var ids = Enumerable.Repeat(49407f, Seq).ToArray();
        float[] prompt = [49406, 320, 1125, 539, 320, 2368];
        prompt.CopyTo(ids, 0);
        return ids;
    }
}
