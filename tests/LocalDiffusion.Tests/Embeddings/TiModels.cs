using System.Text.Json;

namespace LocalDiffusion.Tests.Embeddings;

/// <summary>
/// models/test/ti (tools/build_ti_test_files.py): text encoders with a standard token-embedding table, embedding files,
/// and model folders assembled from them for pipeline tests (tiny / tiny-sdxl / tiny-sd3 / tiny-flux-dev with their text encoders swapped in).
/// </summary>
internal static class TiModels
{
    public static string Root => Path.Combine(TestPaths.ModelsDir, "test", "ti");

    public static string Embedding(string part, string file) => Path.Combine(Root, "embeddings", part, file);

    public static string Sd15Encoder => Path.Combine(Root, "sd15", "text_encoder.onnx");

    private static readonly Lazy<string> Sd15Folder = new(() => Assemble("tiny", ("text_encoder", "sd15/text_encoder.onnx")));
    private static readonly Lazy<string> SdxlFolder = new(() => Assemble("tiny-sdxl", ("text_encoder", "sdxl/text_encoder.onnx"), ("text_encoder_2", "sdxl/text_encoder_2.onnx")));

    private static readonly Lazy<string> Sd3Folder = new(() => Assemble("tiny-sd3", ("text_encoder", "sd3/text_encoder.onnx"), ("text_encoder_2", "sd3/text_encoder_2.onnx")));
    private static readonly Lazy<string> FluxFolder = new(() => Assemble("tiny-flux-dev", ("text_encoder", "sdxl/text_encoder.onnx")));

    /// <summary>tiny-sd3 with SD 3's table encoders (CLIP-L 32 and CLIP-G 48, text_embeds 32 + 48 as its transformer takes).</summary>
    public static string Sd3 => Sd3Folder.Value;

    /// <summary>tiny-flux-dev with the SDXL pair's first table encoder as CLIP-L (width 32, pooler_output [B,32] as FLUX reads).</summary>
    public static string Flux => FluxFolder.Value;

    /// <summary>models/test/ti/flow: files SD 3 / FLUX tests use (g-only 48 wide, odd-width 40, narrow-pair clip_l 24).</summary>
    public static string Flow(string file) => Path.Combine(Root, "flow", file);

    /// <summary>tiny with the SD 1.x table encoder (width 32, as tiny's UNet takes).</summary>
    public static string Sd15 => Sd15Folder.Value;

    /// <summary>tiny-sdxl with both table encoders (widths 32 and 48, text_embeds 16).</summary>
    public static string Sdxl => SdxlFolder.Value;

    /// <summary>The engine's ids: the reference's where it has a vocabulary id, a (negative) embedding id where it has a new row.</summary>
    public static void SameTokens(int[] expected, int[] actual, int vocabulary)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            if (expected[i] < vocabulary) Assert.Equal(expected[i], actual[i]);
            else Assert.True(actual[i] < 0, $"position {i}: expected an embedding id, got {actual[i]}");
    }

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
