using System.CommandLine;
using LocalDiffusion.Cli.Commands;
using LocalDiffusion.Onnx;
using Spectre.Console;

namespace LocalDiffusion.Cli;

/// <summary>The <c>localdiffusion</c> command line: parses, dispatches, and turns user errors into one clear line.</summary>
internal static class CliApp
{
    public static async Task<int> RunAsync(string[] args, IAnsiConsole console, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = new RootCommand("LocalDiffusion: text-to-image with Stable Diffusion ONNX models, on your own machine.")
        {
            GenerateCommand.Create(console),
            InfoCommand.Create(console),
            TokenizeCommand.Create(console),
            SchedulersCommand.Create(console),
            BenchCommand.Create(console),
            CacheCommand.Create(console),
        };
        var parse = root.Parse(args);
        var config = new InvocationConfiguration { Output = new AnsiTextWriter(console), Error = error, EnableDefaultExceptionHandler = false };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            return await parse.InvokeAsync(config, cts.Token);
        }
        catch (Exception e) when (IsUserError(e))
        {
            await error.WriteLineAsync($"error: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("cancelled");
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    // What the user can fix (a path, a value, a missing package) needs one clear line, not a stack trace.
    private static bool IsUserError(Exception e) => e is ModelLoadException or ExecutionProviderUnavailableException
        or ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
        or IOException or FormatException or InvalidOperationException;

    /// <summary>Lets System.CommandLine's help and parse errors go through the same console as everything else.</summary>
    private sealed class AnsiTextWriter(IAnsiConsole console) : TextWriter
    {
        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

        public override void Write(char value) => console.Profile.Out.Writer.Write(value);

        public override void Write(string? value) => console.Profile.Out.Writer.Write(value);
    }
}
