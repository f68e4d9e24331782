using LocalDiffusion.Pipeline;
using System.Text.Json;
using LocalDiffusion.Adapters;

namespace LocalDiffusion.Tests.Adapters;

/// <summary>
/// LyCORIS LoHa and LoKr files (tools/build_lycoris_test_files.py: kohya-style keys as LyCORIS saves them, linear and 3×3 conv
/// layers, LoKr with each factor whole or decomposed) merged into tiny's UNet: the engine's W' − W equals weight × torch's ΔW
/// (A1111's formulas, TestData/Adapters/lycoris_deltas.json) within 1e-5 of its largest value (float32 products summed in
/// another order), and a generation with them changes the picture and returns exactly to the model's own afterwards.
/// </summary>
public sealed class LycorisMergeTests
{
    private static string Lora(string name) => Path.Combine(TestPaths.ModelsDir, "test", "lora", name);

    private static readonly JsonElement Deltas = JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Adapters", "lycoris_deltas.json"))).RootElement.GetProperty("modules");

    [Theory]
    [InlineData("lycoris_loha.safetensors", new[] { "cross.q", "res_high.conv1" })]
    [InlineData("lycoris_lokr.safetensors", new[] { "cross.k", "cross.v", "res_high.conv2" })]
    public void TheMergedChangeIsTorchsDelta(string file, string[] modules)
    {
        const float weight = 0.7f;
        var unet = Path.Combine(TestModels.PathOf("tiny"), "unet", "model.onnx");
        using var lora = LoraFile.Open(Lora(file));
        Assert.Equal(modules.Length, lora.Layers.Count);
        using var overrides = LoraMerge.Build("unet", unet, [(lora, weight)], "test", skipUnmatched: false, [])!;
        using var model = ModelWeights.Open(unet);
        foreach (var module in modules)
        {
            var target = Assert.Single(model.Targets, t => t.ModulePath.EndsWith(module, StringComparison.Ordinal));
            var original = model.Read(target);
            var merged = overrides.Float32Values(target.Initializer);
            var expected = Deltas.GetProperty(module).GetProperty("delta").EnumerateArray().Select(v => weight * v.GetSingle()).ToArray();
            // torch's [out, in(, kh, kw)]; a MatMul weight is stored transposed.
            var actual = new float[expected.Length];
            var (outF, inF) = ((int)target.OutFeatures, (int)target.InFeatures);
            for (var o = 0; o < outF; o++)
                for (var i = 0; i < inF; i++)
                {
                    var at = target.Layout == WeightLayout.MatMulTransposed ? i * outF + o : o * inF + i;
                    actual[o * inF + i] = merged[at] - original[at];
                }
            var scale = expected.Max(MathF.Abs);
            var worst = expected.Zip(actual).Max(p => MathF.Abs(p.First - p.Second));
            Assert.True(worst <= 1e-5f * scale, $"{module}: largest difference {worst} at scale {scale}");
        }
    }

    [Fact]
    public void LohaAndLokrChangeThePictureAndSwitchBackExactly()
    {
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cpu", UseModelCache = false, LoraDirectory = Path.Combine(TestPaths.ModelsDir, "test", "lora") });
        var request = new GenerationRequest { Prompt = "a golden castle", Seed = 3, Steps = 3, Width = 64, Height = 64 };
        float[] Latents(GenerationRequest r) => pipeline.GenerateAsync(r, cancellationToken: TestContext.Current.CancellationToken).GetAwaiter().GetResult().FinalLatents;
        var never = Latents(request);
        var withBoth = Latents(request with { Prompt = "a golden castle <lora:lycoris_loha:0.8> <lyco:lycoris_lokr:0.5>" });
        Assert.True(never.Zip(withBoth).Max(p => MathF.Abs(p.First - p.Second)) > 1e-3f, "the LyCORIS files must change the picture");
        Assert.Equal(never, Latents(request));
    }

    [Fact]
    public void IncompleteOrTuckerFilesAreRefusedNamingTheKey()
    {
        var header = """{"lora_unet_cross_q.hada_w1_a":{"dtype":"F32","shape":[32,2],"data_offsets":[0,256]},"lora_unet_cross_q.hada_w1_b":{"dtype":"F32","shape":[2,32],"data_offsets":[256,512]}}""";
        var json = System.Text.Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + 512];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        var path = TestPaths.WriteTempFile(bytes, ".safetensors");
        var e = Assert.Throws<LoraException>(() => LoraFile.Open(path));
        Assert.Contains("lacks one of hada_w1_a, hada_w1_b, hada_w2_a, hada_w2_b", e.Message);
        Assert.Contains("lora_unet_cross_q.hada_w1_", e.Message);
    }
}
