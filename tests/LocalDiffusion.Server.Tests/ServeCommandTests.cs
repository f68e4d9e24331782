using System.Text;
using System.Text.RegularExpressions;
using LocalDiffusion.Cli;
using Spectre.Console;

namespace LocalDiffusion.Server.Tests;

/// <summary><c>localdiffusion serve</c> through the real command line, in-process.</summary>
public sealed partial class ServeCommandTests
{
    [GeneratedRegex(@"at (http://127\.0\.0\.1:\d+/)")]
    private static partial Regex AddressLine();

    [Fact]
    public async Task Serve_on_port_0_prints_the_address_answers_and_stops_on_cancel()
    {
        var output = new StringBuilder();
        var writer = new LockedWriter(output);
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 400;
        using var stop = new CancellationTokenSource();
        var run = CliApp.RunAsync(["serve", "--port", "0", "--model", Repo.Tiny, "--model", Repo.Shapes, "--max-queue", "2", "--device", "cpu"],
            console, TextWriter.Null, stop.Token);

        Match? match = null;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && !run.IsCompleted)
        {
            lock (output) match = AddressLine().Match(output.ToString());
            if (match.Success) break;
            await Task.Delay(50);
        }
        Assert.True(match?.Success, $"no address printed: {output}");
        using var http = new HttpClient { BaseAddress = new Uri(match!.Groups[1].Value) };
        var health = await http.GetStringAsync("health");
        Assert.Contains("\"capacity\":2", health);
        Assert.Contains("\"id\":\"tiny\"", health);

        await stop.CancelAsync();
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(30)));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => http.GetStringAsync("health"));
    }

    [Fact]
    public async Task Bad_options_are_one_clear_line()
    {
        var error = new StringWriter();
        var code = await CliApp.RunAsync(["serve", "--port", "0", "--concurrency", "0", "--model", Repo.Tiny], AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) }), error);
        Assert.Equal(1, code);
        Assert.StartsWith("error: Concurrency must be at least 1.", error.ToString());

        error = new StringWriter();
        code = await CliApp.RunAsync(["serve", "--port", "0", "--max-batch", "0", "--model", Repo.Tiny], AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) }), error);
        Assert.Equal(1, code);
        Assert.StartsWith("error: MaxBatch must be between 1 (no batching) and 64.", error.ToString());

        error = new StringWriter();
        code = await CliApp.RunAsync(["serve", "--port", "0", "--model", "/no/such/model"], AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) }), error);
        Assert.Equal(1, code);
        Assert.Equal("error: Model folder /no/such/model does not exist.", error.ToString().Trim());
    }

    private sealed class LockedWriter(StringBuilder target) : TextWriter
    {
        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            lock (target) target.Append(value);
        }

        public override void Write(string? value)
        {
            lock (target) target.Append(value);
        }
    }
}
