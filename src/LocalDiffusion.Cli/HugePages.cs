using System.Collections;
using System.Runtime.InteropServices;

namespace LocalDiffusion.Cli;

/// <summary>
/// On Linux, starts the command once more (execve: same program, same arguments) with glibc's malloc told to back its
/// large blocks with transparent huge pages (<c>GLIBC_TUNABLES=glibc.malloc.hugetlb=1</c>, glibc ≥ 2.35), where the
/// kernel offers them (transparent_hugepage <c>madvise</c> or <c>always</c>). ONNX Runtime's tensors and arenas are
/// malloc'd: with 2 MB pages an SD-1.5 512² UNet step ran about 10 % faster and the first VAE decode of a process 1.8 s
/// faster (fewer page faults and TLB misses; benchmarks/README.md). glibc reads the setting only at start, hence the
/// restart. <c>LOCALDIFFUSION_HUGEPAGES=0</c> turns it off; a GLIBC_TUNABLES that already sets it is left alone.
/// </summary>
internal static partial class HugePages
{
    public const string Variable = "LOCALDIFFUSION_HUGEPAGES";
    private const string Tunable = "glibc.malloc.hugetlb";

    // Commands that run models; the others start faster without the restart.
    private static readonly HashSet<string> Commands = ["generate", "batch", "serve", "bench"];

    /// <summary>Replaces this process with the same command under the tunable when that helps; returns when it does not (or cannot).</summary>
    public static void RestartIfUseful(string[] args)
    {
        if (args.Length == 0 || !Commands.Contains(args[0])) return;
        if (Environment.GetEnvironmentVariable(Variable) == "0") return;
        var tunables = Environment.GetEnvironmentVariable("GLIBC_TUNABLES");
        if (tunables?.Contains(Tunable, StringComparison.Ordinal) == true || !KernelOffersHugePages()) return;
        // Re-executing would pass the arguments on as the strings .NET decoded, turning bytes that were not UTF-8 into
        // valid U+FFFD: this process reports them instead (ArgvText).
        if (ArgvText.HadInvalidUtf8) return;
        string[] argv;
        try
        {
            // The exact command line this process was started with (dotnet host and assembly, or the apphost).
            argv = File.ReadAllText("/proc/self/cmdline").TrimEnd('\0').Split('\0');
        }
        catch (IOException)
        {
            return;
        }
        var environment = new List<string?>();
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
            if ((string)entry.Key != "GLIBC_TUNABLES") environment.Add($"{entry.Key}={entry.Value}");
        environment.Add($"GLIBC_TUNABLES={(string.IsNullOrEmpty(tunables) ? "" : tunables + ":")}{Tunable}=1");
        environment.Add(null);
        Console.Out.Flush();
        execve("/proc/self/exe", [.. argv, null], [.. environment]);
        // Only reached when execve failed: carry on without huge pages.
    }

    /// <summary>Whether this is Linux with transparent huge pages in <c>always</c> or <c>madvise</c> mode.</summary>
    public static bool KernelOffersHugePages()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            var mode = File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled");
            return mode.Contains("[always]", StringComparison.Ordinal) || mode.Contains("[madvise]", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int execve(string path, string?[] argv, string?[] envp);
}
