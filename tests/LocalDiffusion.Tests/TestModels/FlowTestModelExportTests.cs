using System.Text.Json;
using LocalDiffusion.Tests.Schedulers;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.TestModelFiles;

/// <summary>
/// models/test/tiny-sd3 and tiny-flux-* transformers, run by ONNX Runtime at the reference cases' sizes (other than the
/// export's), against the first transformer output that diffusers v0.31.0's torch classes gave in
/// tools/pipeline_reference/sd3_tiny.py and flux_tiny.py (TestData/Pipeline/diffusers_{sd3,flux}_tiny.json). Float32 on both
/// sides, different kernels: 1e-4 relative with a 1e-4 absolute floor.
/// </summary>
public class FlowTestModelExportTests
{
    private static JsonElement Load(string file) =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Pipeline", file))).RootElement;

    private static float[] Floats(JsonElement e) => DiffusersReference.Floats(e);

    private static float[] Run(string model, params (string Name, float[] Values, long[] Shape)[] inputs)
    {
        using var session = new InferenceSession(Path.Combine(TestPaths.ModelsDir, "test", model, "transformer", "model.onnx"));
        var values = inputs.Select(i => OrtValue.CreateTensorValueFromMemory(i.Values, i.Shape)).ToList();
        try
        {
            using var options = new RunOptions();
            using var outputs = session.Run(options, inputs.Select(i => i.Name).ToArray(), values, session.OutputNames);
            Assert.Equal(["out_hidden_states"], session.OutputNames);
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }

    [Fact]
    public void Sd3TransformerMatchesDiffusers()
    {
        var root = Load("diffusers_sd3_tiny.json");
        foreach (var testCase in root.GetProperty("cases").EnumerateArray())
        {
            var shape = testCase.GetProperty("latent_shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var latents = Floats(testCase.TryGetProperty("noised_latents", out var noised) ? noised : testCase.GetProperty("noise"));
            var positive = root.GetProperty("conditioning").GetProperty(testCase.GetProperty("prompt").GetString()!);
            var negative = root.GetProperty("conditioning").GetProperty("");
            var cfg = testCase.GetProperty("guidance").GetDouble() > 1;
            var halves = cfg ? new[] { negative, positive } : [positive];
            var embedsShape = positive.GetProperty("prompt_embeds_shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var batch = halves.Length;
            var t = Floats(testCase.GetProperty("timesteps"))[0];
            var output = Run("tiny-sd3",
                ("hidden_states", Enumerable.Repeat(latents, batch).SelectMany(x => x).ToArray(), [batch, .. shape[1..]]),
                ("encoder_hidden_states", halves.SelectMany(h => Floats(h.GetProperty("prompt_embeds"))).ToArray(), [batch, embedsShape[1], embedsShape[2]]),
                ("pooled_projections", halves.SelectMany(h => Floats(h.GetProperty("pooled"))).ToArray(), [batch, 80]),
                ("timestep", Enumerable.Repeat(t, batch).ToArray(), [batch]));
            Tolerance.AssertClose(Floats(testCase.GetProperty("first_transformer_output")), output,
                testCase.GetProperty("name").GetString()!, 1e-4, 1e-4);
        }
    }

    [Fact]
    public void FluxTransformersMatchDiffusers()
    {
        var root = Load("diffusers_flux_tiny.json");
        foreach (var testCase in root.GetProperty("cases").EnumerateArray())
        {
            var shape = testCase.GetProperty("latent_shape").EnumerateArray().Select(e => (int)e.GetInt64()).ToArray();
            var (h, w) = (shape[2], shape[3]);
            var packed = testCase.TryGetProperty("noised_latents_packed", out var noised) ? Floats(noised) : Pack(Floats(testCase.GetProperty("noise")), h, w);
            var conditioning = root.GetProperty("conditioning").GetProperty(testCase.GetProperty("prompt").GetString()!);
            var embeds = Floats(conditioning.GetProperty("prompt_embeds"));
            var sequence = embeds.Length / 96;
            var imgIds = new float[h / 2 * (w / 2) * 3];
            for (var i = 0; i < h / 2; i++)
                for (var j = 0; j < w / 2; j++)
                    (imgIds[(i * (w / 2) + j) * 3 + 1], imgIds[(i * (w / 2) + j) * 3 + 2]) = (i, j);
            var variant = testCase.GetProperty("variant").GetString()!;
            var inputs = new List<(string, float[], long[])>
            {
                ("hidden_states", packed, [1, h / 2 * (w / 2), 64]),
                ("encoder_hidden_states", embeds, [1, sequence, 96]),
                ("pooled_projections", Floats(conditioning.GetProperty("pooled")), [1, 32]),
                ("timestep", [Floats(testCase.GetProperty("timesteps"))[0] / 1000f], [1]),
                ("img_ids", imgIds, [h / 2 * (w / 2), 3]),
                ("txt_ids", new float[sequence * 3], [sequence, 3]),
            };
            if (variant == "dev")
                inputs.Add(("guidance", [(float)testCase.GetProperty("guidance").GetDouble()], [1]));
            var output = Run($"tiny-flux-{variant}", [.. inputs]);
            Tolerance.AssertClose(Floats(testCase.GetProperty("first_transformer_output")), output,
                testCase.GetProperty("name").GetString()!, 1e-4, 1e-4);
        }
    }

    /// <summary>FluxPipeline._pack_latents for batch 1: token (i, j) holds channel c's 2×2 patch at c·4 + 2·dy + dx.</summary>
    private static float[] Pack(float[] latents, int h, int w)
    {
        var packed = new float[latents.Length];
        var channels = latents.Length / (h * w);
        for (var i = 0; i < h / 2; i++)
            for (var j = 0; j < w / 2; j++)
                for (var c = 0; c < channels; c++)
                    for (var dy = 0; dy < 2; dy++)
                        for (var dx = 0; dx < 2; dx++)
                            packed[(i * (w / 2) + j) * channels * 4 + c * 4 + dy * 2 + dx] = latents[(c * h + 2 * i + dy) * w + 2 * j + dx];
        return packed;
    }
}
