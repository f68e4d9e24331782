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

    /// <summary>
    /// The files <paramref name="name"/> stands for: those whose <see cref="NameOf"/> or bare file name (without
    /// <c>.safetensors</c>) equals it. Only files the folder lists can match, so a name never reaches a file outside it.
    /// </summary>
    public static IReadOnlyList<string> Find(string directory, string name) =>
        List(directory).Where(f => string.Equals(NameOf(directory, f), name, StringComparison.Ordinal)
            || string.Equals(Path.GetFileNameWithoutExtension(f), name, StringComparison.Ordinal)).ToList();
}
