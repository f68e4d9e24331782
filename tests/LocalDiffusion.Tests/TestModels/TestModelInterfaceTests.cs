using LocalDiffusion.Pipeline;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.TestModelFiles;

/// <summary>Each shipped test model declares exactly the interface its variant promises (TestModelCatalog).</summary>
public class TestModelInterfaceTests
{
    public static TheoryData<string, string> VariantComponents()
    {
        var data = new TheoryData<string, string>();
        foreach (var variant in TestModelCatalog.Variants)
            foreach (var component in variant.Components)
                data.Add(variant.Name, component.Component);
        return data;
    }

    public static TheoryData<string> VariantNames() => new(TestModelCatalog.Variants.Select(v => v.Name));

    [Theory]
    [MemberData(nameof(VariantComponents))]
    public void SessionMetadataMatchesTheVariantsPromise(string variantName, string componentName)
    {
        var variant = TestModelCatalog.Variant(variantName);
        var expected = variant.Component(componentName);
        using var session = new InferenceSession(Path.Combine(variant.Folder, componentName, "model.onnx"));

        AssertDeclared(expected.Inputs, session.InputNames, session.InputMetadata, $"{variantName}/{componentName} input");
        AssertDeclared(expected.Outputs, session.OutputNames, session.OutputMetadata, $"{variantName}/{componentName} output");
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void FolderHasTheDiffusersLayout(string variantName)
    {
        var variant = TestModelCatalog.Variant(variantName);
        var index = ReadJson(variant.Folder, "model_index.json");
        Assert.Equal(variant.PipelineClass, index.GetProperty("_class_name").GetString());
        var optimumForm = variant.PipelineClass == "StableDiffusionPipeline";
        Assert.Equal(optimumForm, index.TryGetProperty("vae", out _));
        Assert.Equal(!optimumForm, index.TryGetProperty("vae_decoder", out _));

        var scheduler = ReadJson(variant.Folder, "scheduler", "scheduler_config.json");
        Assert.Equal("PNDMScheduler", scheduler.GetProperty("_class_name").GetString());
        Assert.Equal("scaled_linear", scheduler.GetProperty("beta_schedule").GetString());
        Assert.Equal(1, scheduler.GetProperty("steps_offset").GetInt32());

        foreach (var file in new[] { "vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(variant.Folder, "tokenizer", file)), $"{variantName}/tokenizer/{file} is missing");
        Assert.Equal(TestModelCatalog.SequenceLength,
            ReadJson(variant.Folder, "tokenizer", "tokenizer_config.json").GetProperty("model_max_length").GetInt32());

        Assert.Equal(variant.HasExternalUnetData, File.Exists(Path.Combine(variant.Folder, "unet", "model.onnx_data")));
        var vaeConfig = Path.Combine(variant.Folder, "vae_decoder", "config.json");
        Assert.Equal(optimumForm, File.Exists(vaeConfig));
        if (optimumForm)
            Assert.Equal(0.18215, ReadJson(variant.Folder, "vae_decoder", "config.json").GetProperty("scaling_factor").GetDouble(), 1e-9);
    }

    [Fact]
    public void TokenizerVocabEndsWithTheTwoSpecialTokens()
    {
        // clip_bpe.py's layout: 256 byte chars, the same + "</w>", one id per merge, then BOS and EOS.
        var folder = Path.Combine(TestModelCatalog.Variant("tiny").Folder, "tokenizer");
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(folder, "vocab.json")))!;
        var merges = File.ReadAllLines(Path.Combine(folder, "merges.txt"));
        Assert.Equal("#version: 0.2", merges[0]);
        Assert.Equal(500, merges.Length - 1);  // build_test_models.py's MERGES: its corpus must be rich enough to learn them all
        Assert.Equal(512 + (merges.Length - 1) + 2, vocab.Count);
        Assert.Equal(vocab.Count - 2, vocab["<|startoftext|>"]);
        Assert.Equal(vocab.Count - 1, vocab["<|endoftext|>"]);
    }

    private static void AssertDeclared(TensorSpec[] expected, IReadOnlyList<string> names,
        IReadOnlyDictionary<string, NodeMetadata> metadata, string what)
    {
        Assert.Equal(expected.Select(e => e.Name), names);
        foreach (var spec in expected)
        {
            var actual = metadata[spec.Name];
            Assert.True(actual.ElementDataType == spec.Type,
                $"{what} {spec.Name}: element type {actual.ElementDataType}, promised {spec.Type}");
            Assert.True(spec.Shape.SequenceEqual(actual.Dimensions.Select(d => (long)d)),
                $"{what} {spec.Name}: shape [{string.Join(',', actual.Dimensions)}], promised [{string.Join(',', spec.Shape)}] (-1 = symbolic)");
        }
    }

    private static JsonElement ReadJson(params string[] path) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(path))).RootElement;
}
