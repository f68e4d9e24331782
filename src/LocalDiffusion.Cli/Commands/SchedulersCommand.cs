using System.CommandLine;
using LocalDiffusion.Schedulers;
using Spectre.Console;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion schedulers</c>: every registered scheduler and the names it answers to.</summary>
internal static class SchedulersCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("schedulers", "List the schedulers (samplers) and the names --scheduler accepts for each.");
        command.SetAction(_ =>
        {
            var table = new Table().AddColumns("id", "name", "diffusers class", "aliases", "stochastic");
            foreach (var info in SchedulerRegistry.Default.All)
                table.AddRow(Markup.Escape(info.Id), Markup.Escape(info.DisplayName), Markup.Escape(info.DiffusersClass),
                    Markup.Escape(string.Join(", ", info.Aliases)), info.IsStochastic ? "yes" : "no");
            console.Write(table);
            return 0;
        });
        return command;
    }
}
