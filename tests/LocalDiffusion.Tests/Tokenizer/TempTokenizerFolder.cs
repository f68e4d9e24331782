namespace LocalDiffusion.Tests.Tokenizer;

/// <summary>A copy of TestData/Tokenizer/tiny in a fresh temp folder, deleted on dispose.</summary>
internal sealed class TempTokenizerFolder : IDisposable
{
    public TempTokenizerFolder()
    {
        Path = Directory.CreateTempSubdirectory("ld-tokenizer-").FullName;
        foreach (var file in Directory.GetFiles(TestPaths.TestData("Tokenizer", "tiny")))
            File.Copy(file, System.IO.Path.Combine(Path, System.IO.Path.GetFileName(file)));
    }

    public string Path { get; }

    /// <summary>The path of a file in the folder.</summary>
    public string FileIn(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Writes (or overwrites) a file in the folder and returns its path.</summary>
    public string Write(string name, string content)
    {
        var path = FileIn(name);
        File.WriteAllText(path, content);
        return path;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
