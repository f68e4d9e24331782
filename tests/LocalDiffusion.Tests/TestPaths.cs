namespace LocalDiffusion.Tests;

/// <summary>Where the repository, its shipped models and the shared test data are, seen from the test binary.</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string ModelsDir => Path.Combine(RepoRoot, "models");

    /// <summary>../shared beside the project root (CI has it too); null when absent.</summary>
    public static string? SharedDir
    {
        get
        {
            var dir = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
            return Directory.Exists(dir) ? dir : null;
        }
    }

    /// <summary>A file under ../shared, or a skipped test that says what is missing.</summary>
    public static string RequireShared(params string[] parts)
    {
        var shared = SharedDir;
        if (shared is null)
            Assert.Skip($"../shared is absent beside {RepoRoot}: this test needs the shared test data ({string.Join('/', parts)}).");
        var path = Path.Combine([shared!, .. parts]);
        if (!File.Exists(path) && !Directory.Exists(path))
            Assert.Skip($"{path} is absent: this test needs it.");
        return path;
    }

    /// <summary>A file shipped with the tests (tests/LocalDiffusion.Tests/TestData), copied beside the test binary.</summary>
    public static string TestData(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "TestData", .. parts]);

    /// <summary>Writes <paramref name="bytes"/> to a new file in the system temp folder and returns its path.</summary>
    public static string WriteTempFile(byte[] bytes, string extension)
    {
        var path = Path.Combine(Path.GetTempPath(), $"ld-{Guid.NewGuid():N}{extension}");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LocalDiffusion.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"LocalDiffusion.sln not found above {AppContext.BaseDirectory}");
    }
}
