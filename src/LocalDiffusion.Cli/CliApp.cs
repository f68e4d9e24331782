using System.CommandLine;
using LocalDiffusion.Cli.Commands;
using Spectre.Console;

namespace LocalDiffusion.Cli;

/// <summary>The <c>localdiffusion</c> command line: parses, dispatches, and turns every error into one clear line and an exit code (<see cref="ExitCodes"/>).</summary>
internal static class CliApp
{
    public static async Task<int> RunAsync(string[] args, IAnsiConsole console, TextWriter error, CancellationToken cancellationToken = default)
    {
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Print the full details (stack trace) of an error; serve also logs every request.", Recursive = true };
        var root = new RootCommand("LocalDiffusion: text-to-image with Stable Diffusion ONNX models, on your own machine.")
        {
            verbose,
            GenerateCommand.Create(console),
            BatchCommand.Create(console),
            InfoCommand.Create(console),
            TokenizeCommand.Create(console),
            SchedulersCommand.Create(console),
            BenchCommand.Create(console),
            ServeCommand.Create(console),
            CacheCommand.Create(console),
            UpscaleCommand.Create(console),
        };
        var parse = root.Parse(args);
        var config = new InvocationConfiguration { Output = new AnsiTextWriter(console), Error = error, EnableDefaultExceptionHandler = false };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            // A bad command line is one line per mistake in the CLI's words (exit 1); with no arguments at all, help.
            if (parse.Errors.Count > 0 && args.Length > 0)
            {
                foreach (var line in ParseErrors.Describe(parse)) await error.WriteLineAsync(line);
                return ExitCodes.InvalidInput;
            }
            return await parse.InvokeAsync(config, cts.Token);
        }
        catch (Exception e)
        {
            return await ErrorReport.WriteAsync(e, error, parse.GetValue(verbose));
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>Lets System.CommandLine's help and parse errors go through the same console as everything else.</summary>
    private sealed class AnsiTextWriter(IAnsiConsole console) : TextWriter
    {
        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

        public override void Write(char value) => console.Profile.Out.Writer.Write(value);

        public override void Write(string? value) => console.Profile.Out.Writer.Write(value);
    }
}
