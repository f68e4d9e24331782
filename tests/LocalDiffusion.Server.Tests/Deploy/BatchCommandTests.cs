using System.Text.Json;
using LocalDiffusion.Cli;
using Spectre.Console;

namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary><c>localdiffusion batch</c>: the real command line, in-process and as child processes killed mid-run.</summary>
public sealed class BatchCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("localdiffusion-batch-").FullName;

    private static readonly string[] Prompts =
    [
        "a red circle on a blue background", "a yellow star on a purple background", "a green triangle on a white background",
        "a black cross on an orange background", "a pink square on a gray background", "a blue circle at the top left on a yellow background",
        "a white star on a black background", "a large orange square in the center on a green background", "a purple cross on a pink background",
        "a gray triangle on a red background", "two squares, one green and one yellow, black background", "a red star at the bottom on a blue background",
    ];

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Error, string Output)> RunAsync(params string[] args)
    {
        var error = new StringWriter();
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No });
        console.Profile.Width = 400;
        var code = await CliApp.RunAsync(args, console, error);
        return (code, error.ToString(), output.ToString());
    }

    private string Write(string name, params string[] lines)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Theory]
    [InlineData("--shard", "3/3", "error: --shard '3/3': i must be between 0 and 2 (shards are numbered from 0: 0/3 … 2/3).")]
    [InlineData("--shard", "0/0", "error: --shard '0/0': N must be at least 1.")]
    [InlineData("--shard", "-1/3", "error: --shard '-1/3' is not i/N (e.g. 0/3: the first of 3 shards).")]
    [InlineData("--shard", "two", "error: --shard 'two' is not i/N")]
    [InlineData("--prompts-file", "missing.txt", "error: --prompts-file '{dir}/missing.txt' does not exist.")]
    [InlineData("--prompts-file", "bad-json.txt", "error: --prompts-file '{dir}/bad-json.txt' line 3: not valid JSON")]
    [InlineData("--prompts-file", "bad-field.txt", "error: --prompts-file '{dir}/bad-field.txt' line 2: unknown field 'sed' (known: prompt, negative_prompt, seed, steps, guidance_scale, width, height, scheduler).")]
    [InlineData("--prompts-file", "bad-seed.txt", "error: --prompts-file '{dir}/bad-seed.txt' line 1: 'seed' must be a whole number from 0 to")]
    [InlineData("--prompts-file", "no-prompt.txt", "error: --prompts-file '{dir}/no-prompt.txt' line 1: 'prompt' is missing.")]
    [InlineData("--prompts-file", "empty.txt", "error: --prompts-file '{dir}/empty.txt' holds no prompts.")]
    [InlineData("--out-dir", "a-file.txt", "error: --out-dir '{dir}/a-file.txt' is a file; give a folder (it is created if missing).")]
    public async Task Bad_input_is_one_line_naming_it_and_nothing_is_made(string flag, string value, string expected)
    {
        var prompts = Write("prompts.txt", "a red circle", "a blue square");
        Write("bad-json.txt", "a red circle", "{\"prompt\": \"a blue square\"}", "{\"prompt\": ");
        Write("bad-field.txt", "a red circle", "{\"prompt\": \"a blue square\", \"sed\": 3}");
        Write("bad-seed.txt", "{\"prompt\": \"a blue square\", \"seed\": -3}");
        Write("no-prompt.txt", "{\"negative_prompt\": \"red\"}");
        Write("empty.txt", "", "  ");
        Write("a-file.txt", "not a folder");
        var outDir = Path.Combine(_dir, "out");
        string[] args = ["batch", "--prompts-file", prompts, "--out-dir", outDir, "--model", Repo.Shapes, "--device", "cpu"];
        var at = Array.IndexOf(args, flag);
        var given = flag == "--shard" ? value : Path.Combine(_dir, value);
        args = at < 0 ? [.. args, flag, given] : [.. args[..(at + 1)], given, .. args[(at + 2)..]];

        var (code, error, output) = await RunAsync(args);

        Assert.Equal(1, code);
        Assert.StartsWith(expected.Replace("{dir}", _dir, StringComparison.Ordinal), error);
        Assert.Single(error.Trim().Split('\n'));
        Assert.DoesNotContain("internal error", error);
        Assert.Equal("", output);
        Assert.False(Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any(), "nothing is written before the input is checked");
    }

    [Fact]
    public async Task Each_prompt_gets_seed_plus_k_and_its_own_file_and_a_rerun_makes_only_what_is_missing()
    {
        var prompts = Write("prompts.txt", Prompts[0], "", "{\"prompt\": \"" + Prompts[1] + "\", \"seed\": 7, \"steps\": 3}", Prompts[2], Prompts[3]);
        var outDir = Path.Combine(_dir, "out");
        string[] args = ["batch", "--prompts-file", prompts, "--out-dir", outDir, "--model", Repo.Shapes, "--device", "cpu", "--steps", "4", "--seed", "100"];

        var (code, error, output) = await RunAsync(args);
        Assert.True(code == 0, error);
        Assert.Contains("shard 0/1: 4 of 4 prompts, 0 already done, 4 to make", output);
        Assert.Equal(["000000.png", "000001.png", "000002.png", "000003.png", "manifest-0-of-1.jsonl"], Files(outDir));
        var records = Records(outDir);
        Assert.Equal([100L, 7, 102, 103], records.Select(r => r.GetProperty("seed").GetInt64()));
        Assert.Equal([4, 3, 4, 4], records.Select(r => r.GetProperty("steps").GetInt32()));
        Assert.Equal([1, 3, 4, 5], records.Select(r => r.GetProperty("line").GetInt32()));
        Assert.All(records, r => Assert.Equal("0/1", r.GetProperty("shard").GetString()));
        Assert.All(records, r => Assert.Equal("shapes", r.GetProperty("model").GetString()));

        // Prompt 2 is exactly `generate` with seed --seed + 2: a batch picture can be made again on its own.
        var single = Path.Combine(_dir, "single.png");
        (code, error, _) = await RunAsync("generate", "--prompt", Prompts[2], "--seed", "102", "--steps", "4", "--model", Repo.Shapes, "--device", "cpu", "--out", single);
        Assert.True(code == 0, error);
        Assert.Equal(File.ReadAllBytes(single), File.ReadAllBytes(Path.Combine(outDir, "000002.png")));

        // What a kill leaves: a picture never renamed into place (its temporary file), a record cut short. A picture
        // cut short cannot be left by the command (it renames whole files), but one copied in by hand is made again.
        var before = File.ReadAllBytes(Path.Combine(outDir, "000001.png"));
        File.Move(Path.Combine(outDir, "000001.png"), Path.Combine(outDir, ".000001.png.partial"));
        File.WriteAllBytes(Path.Combine(outDir, "000003.png"), File.ReadAllBytes(Path.Combine(outDir, "000000.png"))[..100]);
        File.AppendAllText(Path.Combine(outDir, "manifest-0-of-1.jsonl"), "{\"file\":\"0000");

        (code, error, output) = await RunAsync(args);
        Assert.True(code == 0, error);
        Assert.Contains("shard 0/1: 4 of 4 prompts, 2 already done, 2 to make", output);
        Assert.Equal(["000000.png", "000001.png", "000002.png", "000003.png", "manifest-0-of-1.jsonl"], Files(outDir));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(outDir, "000001.png")));
        Assert.Equal(["000000.png", "000001.png", "000002.png", "000003.png"], Records(outDir).Select(r => r.GetProperty("file").GetString()));

        (code, _, output) = await RunAsync(args);
        Assert.Equal(0, code);
        Assert.Contains("4 already done, 0 to make", output);
    }

    [Fact]
    public async Task Three_shard_processes_one_killed_and_restarted_make_each_picture_once_as_one_process_does()
    {
        var prompts = Write("prompts.txt", Prompts);
        var shared = Path.Combine(_dir, "shared");
        var alone = Path.Combine(_dir, "alone");
        string[] Args(string outDir, string shard) =>
            ["batch", "--prompts-file", prompts, "--out-dir", outDir, "--shard", shard, "--model", Repo.Shapes, "--device", "cpu", "--steps", "6", "--seed", "42"];

        using (var single = CliProcess.Start(Args(alone, "0/1")))
            Assert.True(await single.WaitForExitAsync() == 0, single.Output);

        using var shard0 = CliProcess.Start(Args(shared, "0/3"));
        using var shard1 = CliProcess.Start(Args(shared, "1/3"));
        using var shard2 = CliProcess.Start(Args(shared, "2/3"));
        // Killed once it has made a picture and is busy with the next (its prompts: 1, 4, 7, 10).
        await shard1.WaitForOutputAsync("000001.png seed 43");
        shard1.Kill();
        Assert.Equal(137, await shard1.WaitForExitAsync());
        using var restarted = CliProcess.Start(Args(shared, "1/3"));
        foreach (var shard in new[] { shard0, shard2, restarted })
            Assert.True(await shard.WaitForExitAsync() == 0, shard.Output);
        Assert.Matches(@"shard 1/3: 4 of 12 prompts, [1-3] already done", restarted.Output);

        var pictures = Enumerable.Range(0, Prompts.Length).Select(k => $"{k:D6}.png").ToList();
        Assert.Equal([.. pictures, "manifest-0-of-3.jsonl", "manifest-1-of-3.jsonl", "manifest-2-of-3.jsonl"], Files(shared));
        var records = Records(shared);
        Assert.Equal(pictures, records.Select(r => r.GetProperty("file").GetString()).Order());
        Assert.All(records, r => Assert.Equal($"{r.GetProperty("k").GetInt32() % 3}/3", r.GetProperty("shard").GetString()));
        Assert.All(records, r => Assert.Equal(42 + r.GetProperty("k").GetInt64(), r.GetProperty("seed").GetInt64()));
        foreach (var picture in pictures)
            Assert.True(File.ReadAllBytes(Path.Combine(alone, picture)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(shared, picture))), $"{picture} differs from the one-process run");
    }

    // Every entry, hidden ones (temporary files) included.
    private static List<string> Files(string dir) => [.. Directory.EnumerateFileSystemEntries(dir).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal)];

    private static List<JsonElement> Records(string dir) =>
    [
        .. Directory.EnumerateFiles(dir, "manifest-*.jsonl").Order(StringComparer.Ordinal)
            .SelectMany(File.ReadAllLines)
            .Select(line => JsonDocument.Parse(line).RootElement.Clone()),
    ];
}
