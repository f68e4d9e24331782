using System.Diagnostics;
using System.Text.Json;

namespace LocalDiffusion.Tests.Cli;

/// <summary>
/// The CLI restarts itself under GLIBC_TUNABLES=glibc.malloc.hugetlb=1 on Linux where the kernel offers transparent huge
/// pages (Cli/HugePages.cs). Only a real process can show it: the CLI beside the tests is started as a user would, and
/// `bench pipeline`'s report says whether huge pages were on (its machine string).
/// </summary>
public class HugePagesTests
{
    private static async Task<(int Code, string Machine)> Bench(string? hugePages)
    {
        using var dir = new TempDirectory();
        var json = Path.Combine(dir.Path, "report.json");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "LocalDiffusion.Cli.dll"), "bench", "pipeline", "--model", TestModels.PathOf("tiny"),
                "--steps", "1", "--repeats", "1", "--skip-uncached", "--no-matmul", "--device", "cpu", "--cache-dir", dir.Path, "--json", json },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment.Remove("GLIBC_TUNABLES");
        if (hugePages is not null) start.Environment["LOCALDIFFUSION_HUGEPAGES"] = hugePages;
        else start.Environment.Remove("LOCALDIFFUSION_HUGEPAGES");
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(process.ExitCode == 0, await output + await error);
        return (process.ExitCode, JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("machine").GetString()!);
    }

    [Fact]
    public async Task TheCliRunsItsModelsOnHugePagesWhereTheKernelOffersThem()
    {
        Assert.SkipUnless(LocalDiffusion.Cli.HugePages.KernelOffersHugePages(), "this machine's kernel offers no transparent huge pages (or it is not Linux): the CLI does not restart");
        var (_, machine) = await Bench(null);
        Assert.EndsWith(", malloc huge pages", machine);
        var (_, without) = await Bench("0");
        Assert.DoesNotContain("huge pages", without);
    }
}
