namespace LocalDiffusion.Benchmarks;

/// <summary>Finds the repository's files from the benchmark binary (BenchmarkDotNet runs a generated copy below bin/).</summary>
internal static class RepoPaths
{
    /// <summary>The folder holding LocalDiffusion.sln.</summary>
    public static string Root { get; } = Find();

    /// <summary>A path below the repository root.</summary>
    public static string Of(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LocalDiffusion.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException($"LocalDiffusion.sln not found above {AppContext.BaseDirectory}; run the benchmarks from the repository.");
    }
}
