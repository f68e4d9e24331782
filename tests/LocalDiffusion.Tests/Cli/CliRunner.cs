using LocalDiffusion.Cli;
using Spectre.Console;

namespace LocalDiffusion.Tests.Cli;

/// <summary>Runs the <c>localdiffusion</c> command line in-process, capturing what it prints.</summary>
internal static class CliRunner
{
    public static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 200; // a redirected console is 80 columns wide, which would wrap the tables
        var code = await CliApp.RunAsync(args, console, error, TestContext.Current.CancellationToken);
        return (code, output.ToString(), error.ToString());
    }
}
