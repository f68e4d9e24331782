namespace LocalDiffusion.Adapters;

/// <summary>A folder of LoRA files, as AUTOMATIC1111's models/Lora: <c>.safetensors</c> files, in subfolders too.</summary>
public static class LoraDirectory
{
    /// <summary>The LoRA files under <paramref name="directory"/>, sorted by path.</summary>
    public static IReadOnlyList<string> List(string directory) =>
        Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, "*.safetensors", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>The name a prompt uses for <paramref name="file"/>: its path under the folder without the extension, '/'-separated.</summary>
    public static string NameOf(string directory, string file)
    {
        var relative = Path.GetRelativePath(directory, file);
        return Path.ChangeExtension(relative, null)!.Replace(Path.DirectorySeparatorChar, '/');
    }
}
