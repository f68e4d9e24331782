using LocalDiffusion.Onnx.Rewriting;

namespace LocalDiffusion.Adapters;

/// <summary>Whether an optimised graph still has the initializers a LoRA replaces, under the same names and shapes.</summary>
internal static class CachedGraphCheck
{
    /// <summary>True when every one of <paramref name="overrides"/> is an initializer of <paramref name="modelPath"/> with its dimensions.</summary>
    public static bool HasAll(string modelPath, InitializerOverrides overrides)
    {
        try
        {
            using var file = new MappedFile(modelPath);
            var graph = OnnxGraph.Parse(file.Memory);
            return overrides.Shapes.All(o => graph.Initializers.TryGetValue(o.Name, out var t) && t.Dims.SequenceEqual(o.Dims));
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            return false;
        }
    }
}
