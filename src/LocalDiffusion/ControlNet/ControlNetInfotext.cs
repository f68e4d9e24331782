using System.Globalization;

namespace LocalDiffusion.ControlNet;

/// <summary>
/// The A1111 ControlNet extension's infotext entries, <c>ControlNet 0: "Module: canny, Model: NAME, Weight: 0.8, …"</c>
/// (the value JSON-quoted because it holds commas), so PNG-info readers see which ControlNets drew a picture.
/// </summary>
internal static class ControlNetInfotext
{
    public static IEnumerable<string> Entries(GenerationRequest request)
    {
        if (request.ControlNets is not { Count: > 0 } units) yield break;
        var ci = CultureInfo.InvariantCulture;
        for (var i = 0; i < units.Count; i++)
        {
            var u = units[i];
            var parts = new List<string>
            {
                $"Module: {(u.Preprocessor == ControlPreprocessor.Canny ? "canny" : "none")}",
                $"Model: {Name(u.ModelPath ?? "")}",
                string.Create(ci, $"Weight: {u.Scale}"),
                "Resize Mode: Just Resize",
            };
            if (u.Preprocessor == ControlPreprocessor.Canny)
                parts.Add(string.Create(ci, $"Threshold A: {u.CannyLowThreshold}, Threshold B: {u.CannyHighThreshold}"));
            parts.Add(string.Create(ci, $"Guidance Start: {u.GuidanceStart}, Guidance End: {u.GuidanceEnd}"));
            parts.Add($"Control Mode: {(request.ControlNetGuessMode ? "ControlNet is more important" : "Balanced")}");
            yield return $"ControlNet {i}: {System.Text.Json.JsonSerializer.Serialize(string.Join(", ", parts))}";
        }
    }

    // A ControlNet folder's name (its model.onnx says nothing), else the file's name without .onnx.
    private static string Name(string path)
    {
        var trimmed = path.TrimEnd('/', '\\');
        return Path.GetFileName(trimmed) == "model.onnx" ? Path.GetFileName(Path.GetDirectoryName(trimmed)) ?? trimmed
            : Directory.Exists(trimmed) ? Path.GetFileName(trimmed)
            : Path.GetFileNameWithoutExtension(trimmed);
    }
}
