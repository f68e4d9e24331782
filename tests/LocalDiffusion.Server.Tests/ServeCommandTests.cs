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
        // Answering at once; /health says 503 until the models are ready (a readiness check), then 200.
        string health;
        while (true)
        {
            using var response = await http.GetAsync("health");
            health = await response.Content.ReadAsStringAsync();
            if (response.IsSuccessStatusCode) break;
            Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Contains("\"status\":\"loading\"", health);
            await Task.Delay(20);
        }
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
        Assert.StartsWith("error: --concurrency must be at least 1.", error.ToString());

        error = new StringWriter();
        code = await CliApp.RunAsync(["serve", "--port", "0", "--max-batch", "0", "--model", Repo.Tiny], AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) }), error);
        Assert.Equal(1, code);
        Assert.StartsWith("error: --max-batch must be between 1 (no batching) and 64.", error.ToString());

        error = new StringWriter();
        code = await CliApp.RunAsync(["serve", "--port", "0", "--model", "/no/such/model"], AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) }), error);
        Assert.Equal(1, code);
        Assert.Equal("error: Model folder /no/such/model does not exist.", error.ToString().Trim());
    }

    private static async Task<(int Code, string Error, string Output)> RunAsync(params string[] args)
    {
        var error = new StringWriter();
        var output = new StringWriter();
        var code = await CliApp.RunAsync(args, AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No }), error);
        return (code, error.ToString(), output.ToString());
    }

    [Theory]
    [InlineData("--max-queue", "-1", "error: --max-queue must be 0 or more.")]
    [InlineData("--image-ttl-minutes", "0", "error: --image-ttl-minutes must be positive.")]
    [InlineData("--public-url", "notaurl", "--public-url 'notaurl' is not an absolute http:// or https:// URL (e.g. https://images.example.com).")]
    [InlineData("--public-url", "ftp://files.example.com", "--public-url 'ftp://files.example.com' is not an absolute http:// or https:// URL")]
    [InlineData("--host", "not_a_host", "error: --host 'not_a_host' is not an address to listen on: give an IP address of this machine (127.0.0.1, 0.0.0.0 for every interface, ::1), or localhost.")]
    [InlineData("--host", "example.com", "error: --host 'example.com' is not an address to listen on")]
    [InlineData("--threads", "-3", "error: --threads is -3; it must be between 1 and")]
    [InlineData("--cors-origin", "notaurl", "error: CORS origin 'notaurl' is not an origin: give scheme://host[:port] with nothing after it, e.g. http://localhost:3000.")]
    [InlineData("--allowed-host", "bad host!", "error: Allowed host 'bad host!' is not a host name")]
    [InlineData("--output-dir", "/etc/passwd", "error: --output-dir '/etc/passwd' is a file; give a folder (it is created if missing).")]
    [InlineData("--max-pixels", "0", "error: --max-pixels must be positive.")]
    [InlineData("--device", "bogus", "error: ")]
    [InlineData("--upscaler-dir", "/no/such/upscalers", "error: --upscaler-dir '/no/such/upscalers' is not a folder; give the folder that holds the upscalers' .onnx files.")]
    public async Task Each_bad_serve_flag_is_one_line_naming_it_and_nothing_starts(string flag, string value, string expected)
    {
        var (code, error, output) = await RunAsync("serve", "--port", "0", "--model", Repo.Tiny, flag, value);
        Assert.Equal(1, code);
        Assert.Contains(expected, error);
        Assert.Single(error.Trim().Split('\n'));
        Assert.DoesNotContain("internal error", error);
        Assert.DoesNotContain("serving", output);
    }

    [Fact]
    public async Task A_port_in_use_is_one_line_and_no_model_loads()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (code, error, output) = await RunAsync("serve", "--port", port, "--model", Repo.Tiny);
        Assert.Equal(4, code);
        Assert.Equal($"error: Port {port} on 127.0.0.1 is already in use by another program: stop it, or start this server with another --port (0 picks a free one).", error.Trim());
        Assert.DoesNotContain("ready", output);

        // The library says the same with a type, and its models never started loading.
        var e = await Assert.ThrowsAsync<PortInUseException>(() => LocalDiffusionServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], Port = int.Parse(port, System.Globalization.CultureInfo.InvariantCulture) }));
        Assert.Equal(int.Parse(port, System.Globalization.CultureInfo.InvariantCulture), e.Port);
    }

    [Fact]
    public async Task Help_lists_each_flag_once()
    {
        var (code, _, output) = await RunAsync("serve", "--help");
        Assert.Equal(0, code);
        foreach (var flag in new[] { "--verbose", "--public-url", "--allowed-host", "--max-pixels", "--cors-origin" })
            Assert.Single(Regex.Matches(output, $@"^\s+(-\w, )?{Regex.Escape(flag)}(?![\w-])", RegexOptions.Multiline));
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
