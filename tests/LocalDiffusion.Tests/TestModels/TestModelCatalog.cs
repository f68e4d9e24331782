using LocalDiffusion.Pipeline;
using Microsoft.ML.OnnxRuntime.Tensors;
using E = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace LocalDiffusion.Tests.TestModelFiles;

/// <summary>One declared model input or output: name, element type, shape (-1 = symbolic dimension).</summary>
internal sealed record TensorSpec(string Name, TensorElementType Type, params long[] Shape);

/// <summary>The inputs and outputs one component's model.onnx promises, in declaration order.</summary>
internal sealed record ComponentSpec(string Component, TensorSpec[] Inputs, TensorSpec[] Outputs);

/// <summary>A folder under models/test and the interface it exercises.</summary>
internal sealed record VariantSpec(string Name, string PipelineClass, bool IsStatic, bool IsFloat16, bool HasExternalUnetData,
    IReadOnlyList<ComponentSpec> Components)
{
    public string Folder => Path.Combine(TestPaths.ModelsDir, "test", Name);

    public ComponentSpec Component(string name) => Components.Single(c => c.Component == name);

    public override string ToString() => Name;
}

/// <summary>
/// What each variant built by tools/build_test_models.py promises (the task that commissioned them lists these
/// interfaces; models/test/README.md shows them too). A rebuild that changes one must change this file on purpose.
/// </summary>
internal static class TestModelCatalog
{
    public const int TextDim = 32;
    public const int SequenceLength = 77;
    public const long Symbolic = -1;
    private const long S = Symbolic;

    public static IReadOnlyList<VariantSpec> Variants { get; } =
    [
        Dynamic("tiny", "OnnxStableDiffusionPipeline", E.Int32, E.Float, new TensorSpec("timestep", E.Int64, S), "latent_parameters", 8),
        Dynamic("tiny-optimum", "StableDiffusionPipeline", E.Int64, E.Float, new TensorSpec("timestep", E.Float), "latent_parameters", 8),
        Dynamic("tiny-fp16", "OnnxStableDiffusionPipeline", E.Int32, E.Float16, new TensorSpec("timestep", E.Float16, S), "latent_parameters", 8),
        Static("tiny-static"),
        Dynamic("tiny-external", "OnnxStableDiffusionPipeline", E.Int32, E.Float, new TensorSpec("timestep", E.Int64, S), "latent_sample", 4,
            externalUnetData: true),
    ];

    public static VariantSpec Variant(string name) => Variants.Single(v => v.Name == name);

    private static VariantSpec Dynamic(string name, string pipelineClass, TensorElementType ids, TensorElementType real,
        TensorSpec timestep, string encoderOutput, int encoderChannels, bool externalUnetData = false) =>
        new(name, pipelineClass, IsStatic: false, IsFloat16: real == E.Float16, externalUnetData,
        [
            new("text_encoder", [new("input_ids", ids, S, S)],
                [new("last_hidden_state", real, S, S, TextDim), new("pooler_output", real, S, TextDim)]),
            new("unet", [new("sample", real, S, S, S, S), timestep, new("encoder_hidden_states", real, S, S, TextDim)],
                [new("out_sample", real, S, 4, S, S)]),
            new("vae_decoder", [new("latent_sample", real, S, S, S, S)], [new("sample", real, S, 3, S, S)]),
            new("vae_encoder", [new("sample", real, S, S, S, S)], [new(encoderOutput, real, S, encoderChannels, S, S)]),
        ]);

    private static VariantSpec Static(string name) =>
        new(name, "OnnxStableDiffusionPipeline", IsStatic: true, IsFloat16: false, HasExternalUnetData: false,
        [
            new("text_encoder", [new("input_ids", E.Int32, 1, SequenceLength)],
                [new("last_hidden_state", E.Float, 1, SequenceLength, TextDim), new("pooler_output", E.Float, 1, TextDim)]),
            new("unet", [new("sample", E.Float, 1, 4, 8, 8), new("timestep", E.Int64, 1), new("encoder_hidden_states", E.Float, 1, SequenceLength, TextDim)],
                [new("out_sample", E.Float, 1, 4, 8, 8)]),
            new("vae_decoder", [new("latent_sample", E.Float, 1, 4, 8, 8)], [new("sample", E.Float, 1, 3, 64, 64)]),
            new("vae_encoder", [new("sample", E.Float, 1, 3, 64, 64)], [new("latent_parameters", E.Float, 1, 8, 8, 8)]),
        ]);
}
