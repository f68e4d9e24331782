using System.CommandLine;
using System.Globalization;
using LocalDiffusion.Onnx;
using Spectre.Console;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion cache list | clear</c>: the optimised-model cache that makes later starts fast.</summary>
internal static class CacheCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var listDir = CacheDirOption.Create();
        var list = new Command("list", "List the stored optimised models: component, source model, size, last use.") { listDir };
        list.SetAction(parse =>
        {
            var cache = new ModelCache(CacheDirOption.Resolve(parse, listDir));
            var entries = cache.List();
            console.MarkupLineInterpolated($"Cache folder: [blue]{cache.Directory}[/] ({entries.Count} entries, {Megabytes(entries.Sum(e => e.Bytes))})");
            if (entries.Count == 0) return 0;
            var table = new Table().AddColumns("component", "source", "size", "last used (UTC)", "entry");
            foreach (var e in entries)
                table.AddRow(Markup.Escape(e.Component), Markup.Escape(e.Source), Megabytes(e.Bytes),
                    e.LastUsed.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), Markup.Escape(Path.GetFileName(e.Path)));
            console.Write(table);
            return 0;
        });

        var clearDir = CacheDirOption.Create();
        var clear = new Command("clear", "Delete every stored optimised model (the next start of each model stores it again).") { clearDir };
        clear.SetAction(parse =>
        {
            var cache = new ModelCache(CacheDirOption.Resolve(parse, clearDir));
            var count = cache.List().Count;
            var freed = cache.Clear();
            console.MarkupLineInterpolated($"Removed {count} entries ({Megabytes(freed)}) from [blue]{cache.Directory}[/]");
            return 0;
        });

        return new Command("cache", "The optimised-model cache: ONNX Runtime's optimised graphs, stored so later starts skip optimising.") { list, clear };
    }

    private static string Megabytes(long bytes) => (bytes / 1e6).ToString("F1", CultureInfo.InvariantCulture) + " MB";
}
