using System.Runtime.CompilerServices;

namespace LocalDiffusion.Tests;

/// <summary>
/// Points the optimised-model cache of every pipeline the tests load at a folder of this test run, so the suite
/// exercises the cache as users get it without writing into the user's own cache folder.
/// </summary>
internal static class TestCache
{
    public static string Directory { get; } = Path.Combine(Path.GetTempPath(), "ld-test-cache-" + Environment.ProcessId);

    [ModuleInitializer]
    internal static void UseTestFolder()
    {
        if (Environment.GetEnvironmentVariable(LocalDiffusion.Onnx.ModelCache.EnvironmentVariable) is not { Length: > 0 })
        {
            Environment.SetEnvironmentVariable(LocalDiffusion.Onnx.ModelCache.EnvironmentVariable, Directory);
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            };
        }
    }
}
