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
        var clear = new Command("clear",
            "Delete what the cache wrote in the folder: optimised models, unfinished entries and TensorRT engines (the next start of each model " +
            "stores it again). Only folders carrying the cache's marker are deleted (entry.json with its tag and key, staging.json, " +
            "tensorrt-entry.json), and entries of older versions by their exact layout; every other folder is left alone and listed with the reason.") { clearDir };
        clear.SetAction(parse =>
        {
            var cache = new ModelCache(CacheDirOption.Resolve(parse, clearDir));
            var result = cache.Clear();
            var older = result.OlderEntries > 0 ? $", {result.OlderEntries} of them from an older version" : "";
            var extras = (result.Unfinished.Count > 0 ? $", {result.Unfinished.Count} unfinished" : "")
                + (result.TensorRtEngines.Count > 0 ? $", {result.TensorRtEngines.Count} TensorRT engine folders" : "");
            console.MarkupLineInterpolated($"Removed {result.Entries.Count} entries{older}{extras} ({Megabytes(result.BytesFreed)}) from [blue]{cache.Directory}[/]");
            if (result.LeftAlone.Count > 0)
            {
                console.MarkupLineInterpolated($"Left alone {result.LeftAlone.Count} folders the cache did not write (or cannot show it wrote):");
                foreach (var left in result.LeftAlone)
                    console.MarkupLineInterpolated($"  {Path.GetRelativePath(cache.Directory, left.Path)}: {left.Reason}");
            }
            return 0;
        });

        return new Command("cache", "The optimised-model cache: ONNX Runtime's optimised graphs, stored so later starts skip optimising.") { list, clear };
    }

    private static string Megabytes(long bytes) => (bytes / 1e6).ToString("F1", CultureInfo.InvariantCulture) + " MB";
}
