using System.CommandLine;
using System.Globalization;
using LocalDiffusion.Benchmarking;
using Spectre.Console;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion bench server</c>: the served model's images/s and latency with 1, 4, 8… concurrent clients.</summary>
internal static class BenchServerCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var run = new BenchRunFlags("512x512", "Unused (each client's requests are the repeats).");
        var clients = new Option<string>("--clients") { Description = "Concurrent clients, one row each, e.g. 1,4,8.", DefaultValueFactory = _ => "1,4,8" };
        var perClient = new Option<int>("--requests-per-client") { Description = "Requests each client sends, one after another.", DefaultValueFactory = _ => 2 };
        var maxBatch = new Option<int>("--max-batch") { Description = "The server's --max-batch (1: batching off).", DefaultValueFactory = _ => 8 };
        var command = new Command("server", "Starts the server on a loopback port and measures images/s and p50/p95 latency with N concurrent OpenAI-API clients.");
        run.AddRunFlags(command);
        command.Options.Add(clients);
        command.Options.Add(perClient);
        command.Options.Add(maxBatch);
        run.AddEngineFlags(command);
        var vaeTiling = new VaeTilingFlags();
        vaeTiling.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var read = run.Read(parse, new ServerThroughputOptions { Model = "" }, engine => engine with { VaeTiling = vaeTiling.Read(parse) });
            var options = read with
            {
                Clients = ParseClients(parse.GetValue(clients)!),
                RequestsPerClient = parse.GetValue(perClient),
                MaxBatch = parse.GetValue(maxBatch),
                LowMemory = read.Engine?.LowMemory ?? false,
            };
            if (options.RequestsPerClient is < 1 or > 100)
                throw new InvalidRequestException("--requests-per-client", options.RequestsPerClient, null, called => $"{called} must be between 1 and 100.");
            if (options.MaxBatch < 1) throw new InvalidRequestException("--max-batch", options.MaxBatch, null, called => $"{called} must be at least 1.");
            var report = await ServerThroughputBenchmark.RunAsync(options, new InlineProgress<string>(s => console.MarkupLineInterpolated($"[grey]{s}…[/]")), cancellationToken);
            var ci = CultureInfo.InvariantCulture;
            console.MarkupLineInterpolated($"[bold]{report.Model}[/] served on {report.Device}, {report.Width}x{report.Height}, {report.Steps} steps, guidance {report.GuidanceScale.ToString(ci)}, --max-batch {report.MaxBatch}; ONNX Runtime {report.OnnxRuntime}; {report.Machine}");
            var table = new Table().AddColumns("clients", "requests", "wall (s)", "images/s", "p50 (s)", "p95 (s)", "mean batch");
            foreach (var row in report.Rows)
                table.AddRow(row.Clients.ToString(ci), row.Requests.ToString(ci), row.WallSeconds.ToString("F2", ci), row.ImagesPerSecond.ToString("F3", ci),
                    row.P50Seconds.ToString("F2", ci), row.P95Seconds.ToString("F2", ci), row.MeanBatchSize.ToString("F2", ci));
            console.Write(table);
            if (run.JsonPath(parse) is { } jsonPath)
            {
                await File.WriteAllTextAsync(jsonPath, report.ToJson(), cancellationToken);
                console.MarkupLineInterpolated($"Saved [green]{jsonPath}[/]");
            }
            return 0;
        });
        return command;
    }

    private static List<int> ParseClients(string text)
    {
        var list = new List<int>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            list.Add(int.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 64 ? n
                : throw new InvalidRequestException("--clients", text, null, called => $"{called} '{text}': '{item}' is not a number of clients from 1 to 64 (expected e.g. 1,4,8)."));
        return list.Count > 0 ? list : throw new InvalidRequestException("--clients", text, null, called => $"{called} is empty (expected e.g. 1,4,8).");
    }
}
