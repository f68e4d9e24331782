using Spectre.Console;

namespace LocalDiffusion.Cli;

internal static class Program
{
    public static Task<int> Main(string[] args)
    {
        HugePages.RestartIfUseful(args);
        return CliApp.RunAsync(args, AnsiConsole.Console, Console.Error);
    }
}
