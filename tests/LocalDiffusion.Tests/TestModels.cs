using LocalDiffusion.Pipeline;
using System.Collections.Concurrent;

namespace LocalDiffusion.Tests;

/// <summary>The random-weight test models under models/test (built by tools/build_test_models.py).</summary>
internal static class TestModels
{
    /// <summary>Variants and what each exercises (see models/test/README.md).</summary>
    public static readonly string[] Variants = ["tiny", "tiny-optimum", "tiny-fp16", "tiny-static", "tiny-external"];

    private static readonly ConcurrentDictionary<string, StableDiffusionPipeline> Shared = new();

    public static string PathOf(string variant) => Path.Combine(TestPaths.ModelsDir, "test", variant);

    /// <summary>
    /// A pipeline shared by the tests that only generate with it (generation is thread-safe); never dispose it.
    /// Tests that dispose or break a pipeline load their own.
    /// </summary>
    public static StableDiffusionPipeline Pipeline(string variant) =>
        Shared.GetOrAdd(variant, v => StableDiffusionPipeline.Load(PathOf(v), new PipelineOptions { Device = "cpu" }));

    /// <summary>Copies a variant into a temp folder that a test may damage.</summary>
    public static TempDirectory CopyOf(string variant) => CopyOfFolder(PathOf(variant));

    /// <summary>Copies a model folder (any layout) into a temp folder that a test may damage.</summary>
    public static TempDirectory CopyOfFolder(string source)
    {
        var temp = new TempDirectory();
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(temp.Path, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return temp;
    }

    /// <summary>A small, fast request on the tiny models.</summary>
    public static GenerationRequest Request(string prompt = "a red circle on a blue background", long seed = 42) => new()
    {
        Prompt = prompt,
        Seed = seed,
        Steps = 4,
        Width = 64,
        Height = 64,
    };
}

/// <summary>A temporary folder removed on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ld-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
