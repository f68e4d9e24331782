using System.Diagnostics;

namespace LocalDiffusion.Tests.Cli;

/// <summary>
/// Prompts whose command-line bytes are not UTF-8 (.NET decodes them to U+FFFD on Linux) are refused naming the flag
/// and the character, in a real CLI process given raw bytes: /bin/sh's printf writes the bytes into argv, as a Latin-1
/// terminal would. A U+FFFD typed as valid UTF-8 (EF BF BD) is text like any other and is accepted.
/// </summary>
public class InvalidUtf8ArgvTests
{
    // $1… are the CLI's arguments; a PROMPT_BYTES printf format, expanded by the shell, stands in for one of them.
    private static async Task<(int Code, string Out, string Err)> RunWithBytes(string printfFormat, params string[] args)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "argv as raw bytes (and /proc/self/cmdline) are Linux's");
        var start = new ProcessStartInfo("/bin/sh")
        {
            // "$@" passes the fixed arguments; the marker argument is replaced by printf's bytes.
            ArgumentList = { "-c", "bytes=$(printf \"$0\"); for a in \"$@\"; do [ \"$a\" = BYTES ] && a=$bytes; set -- \"$@\" \"$a\"; shift; done; exec dotnet \"$@\"",
                printfFormat, Path.Combine(AppContext.BaseDirectory, "LocalDiffusion.Cli.dll") },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task TokenizeRefusesALatin1PromptNamingTheFlagAndTheCharacter()
    {
        // "café" in Latin-1: é is the single byte E9 (octal 351), not UTF-8.
        var (code, output, error) = await RunWithBytes("caf\\351 au lait", "tokenize", "--model", TestModels.PathOf("tiny"), "-p", "BYTES");
        Assert.True(code == 1, $"exit {code}: {output}{error}");
        Assert.Contains("--prompt has bytes that are not UTF-8 at character 4", error);
        Assert.DoesNotContain("ids:", output);
    }

    [Fact]
    public async Task AU_FFFDTypedAsUtf8IsAccepted()
    {
        var (code, output, error) = await RunWithBytes("a \\357\\277\\275 b", "tokenize", "--model", TestModels.PathOf("tiny"), "-p", "BYTES");
        Assert.True(code == 0, $"exit {code}: {output}{error}");
        Assert.Contains("ids:", output);
    }

    [Fact]
    public async Task GenerateRefusesInvalidBytesInEitherPromptBeforeLoadingAndWritesNothing()
    {
        using var dir = new TempDirectory();
        var png = Path.Combine(dir.Path, "out.png");
        var (code, output, error) = await RunWithBytes("\\377x", "generate", "--model", TestModels.PathOf("tiny"), "-p", "BYTES", "--steps", "1", "--out", png);
        Assert.True(code == 1, $"exit {code}: {output}{error}");
        Assert.Contains("--prompt has bytes that are not UTF-8 at character 1", error);
        (code, output, error) = await RunWithBytes("ok \\377", "generate", "--model", TestModels.PathOf("tiny"), "-p", "ok", "--negative-prompt", "BYTES", "--steps", "1", "--out", png);
        Assert.True(code == 1, $"exit {code}: {output}{error}");
        Assert.Contains("--negative-prompt has bytes that are not UTF-8 at character 4", error);
        Assert.False(File.Exists(png));
    }

    [Fact]
    public async Task BatchRefusesInvalidBytesInItsNegativePrompt()
    {
        using var dir = new TempDirectory();
        var prompts = Path.Combine(dir.Path, "prompts.txt");
        File.WriteAllText(prompts, "a red circle\n");
        var (code, output, error) = await RunWithBytes("bad\\200", "batch", "--prompts-file", prompts, "--out-dir", Path.Combine(dir.Path, "out"),
            "--model", TestModels.PathOf("tiny"), "--negative-prompt", "BYTES", "--steps", "1");
        Assert.True(code == 1, $"exit {code}: {output}{error}");
        Assert.Contains("--negative-prompt has bytes that are not UTF-8 at character 4", error);
    }

    [Fact]
    public async Task TokenizeRefusesAPromptsFileThatIsNotUtf8()
    {
        using var dir = new TempDirectory();
        var file = Path.Combine(dir.Path, "latin1.txt");
        File.WriteAllBytes(file, [(byte)'c', (byte)'a', (byte)'f', 0xE9, (byte)'\n']);
        var (code, _, error) = await CliRunner.Run("tokenize", "--model", TestModels.PathOf("tiny"), "--prompts-file", file);
        Assert.Equal(1, code);
        Assert.Contains($"--prompts-file '{file}' is not UTF-8 text", error);
    }
}
