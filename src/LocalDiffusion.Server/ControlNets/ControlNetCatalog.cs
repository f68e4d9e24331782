namespace LocalDiffusion.Server.ControlNets;

/// <summary>
/// The ControlNets a server offers: the <c>--controlnet-dir</c> folder's subfolders holding a <c>model.onnx</c> (named by
/// the subfolder) and its top-level <c>.onnx</c> files (named without the extension). Clients pick one by name only, never
/// by path, so a request cannot open files elsewhere.
/// </summary>
internal static class ControlNetCatalog
{
    /// <summary>Name → model file, sorted by name; empty without a folder.</summary>
    public static IReadOnlyList<(string Name, string Path)> List(string? directory)
    {
        if (directory is null || !Directory.Exists(directory)) return [];
        var found = new List<(string, string)>();
        foreach (var sub in Directory.EnumerateDirectories(directory))
            if (File.Exists(Path.Combine(sub, "model.onnx")))
                found.Add((Path.GetFileName(sub), Path.Combine(sub, "model.onnx")));
        foreach (var file in Directory.EnumerateFiles(directory, "*.onnx"))
            found.Add((Path.GetFileNameWithoutExtension(file), file));
        return [.. found.OrderBy(f => f.Item1, StringComparer.Ordinal)];
    }

    /// <summary>The model file of <paramref name="name"/> (A1111's " [hash]" suffix ignored), or null when there is none.</summary>
    public static string? Find(string? directory, string name)
    {
        var bare = name.Split(" [")[0].Trim();
        return List(directory).FirstOrDefault(f => f.Name == bare).Path;
    }
}
