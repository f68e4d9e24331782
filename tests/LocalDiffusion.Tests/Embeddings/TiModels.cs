using System.Text.Json;

namespace LocalDiffusion.Tests.Embeddings;

/// <summary>
/// models/test/ti (tools/build_ti_test_files.py): text encoders with a standard token-embedding table, embedding files,
/// and model folders assembled from them for pipeline tests (tiny / tiny-sdxl with their text encoders swapped in).
/// </summary>
internal static class TiModels
{
    public static string Root => Path.Combine(TestPaths.ModelsDir, "test", "ti");

    public static string Embedding(string part, string file) => Path.Combine(Root, "embeddings", part, file);

    public static string Sd15Encoder => Path.Combine(Root, "sd15", "text_encoder.onnx");

    private static readonly Lazy<string> Sd15Folder = new(() => Assemble("tiny", ("text_encoder", "sd15/text_encoder.onnx")));
    private static readonly Lazy<string> SdxlFolder = new(() => Assemble("tiny-sdxl", ("text_encoder", "sdxl/text_encoder.onnx"), ("text_encoder_2", "sdxl/text_encoder_2.onnx")));

    /// <summary>tiny with the SD 1.x table encoder (width 32, as tiny's UNet takes).</summary>
    public static string Sd15 => Sd15Folder.Value;

    /// <summary>tiny-sdxl with both table encoders (widths 32 and 48, text_embeds 16).</summary>
    public static string Sdxl => SdxlFolder.Value;

    private static string Assemble(string variant, params (string Component, string File)[] encoders)
    {
        var target = Path.Combine(Path.GetTempPath(), $"ld-ti-{variant}-{Environment.ProcessId}");
        if (Directory.Exists(target)) Directory.Delete(target, true);
        foreach (var file in Directory.EnumerateFiles(TestModels.PathOf(variant), "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(target, Path.GetRelativePath(TestModels.PathOf(variant), file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
        foreach (var (component, file) in encoders) File.Copy(Path.Combine(Root, file), Path.Combine(target, component, "model.onnx"), true);
        return target;
    }

    /// <summary>tests/TestData/TextualInversion/reference.json: torch's conditioning with the vectors spliced into the table.</summary>
    public static JsonElement Reference { get; } = JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("TextualInversion", "reference.json"))).RootElement;

    public static JsonElement Case(string model, string name) =>
        Reference.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("model").GetString() == model && c.GetProperty("name").GetString() == name);

    public static float[] Floats(JsonElement e) => e.EnumerateArray().Select(v => v.GetSingle()).ToArray();

    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();
}
