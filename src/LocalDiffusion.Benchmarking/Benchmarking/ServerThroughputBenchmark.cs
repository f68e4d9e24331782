using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using LocalDiffusion.Errors;
using LocalDiffusion.Server;
using Microsoft.Extensions.Logging.Abstractions;

namespace LocalDiffusion.Benchmarking;

/// <summary>What <see cref="ServerThroughputBenchmark"/> measures: one model served, so many concurrent clients.</summary>
public sealed record ServerThroughputOptions : BenchmarkRunOptions
{
    /// <summary>The numbers of concurrent clients, one measured row each (in this order, on one warm server).</summary>
    public IReadOnlyList<int> Clients { get; init; } = [1, 4, 8];

    /// <summary>Requests each client sends, one after another (one image each).</summary>
    public int RequestsPerClient { get; init; } = 2;

    /// <summary>The server's <c>--max-batch</c> (1: batching off).</summary>
    public int MaxBatch { get; init; } = 8;

    /// <summary>The server's <c>--low-memory</c>.</summary>
    public bool LowMemory { get; init; }
}

/// <summary>One row of <see cref="ServerThroughputReport"/>: so many clients at once.</summary>
/// <param name="Clients">Concurrent clients.</param>
/// <param name="Requests">Requests answered (clients × requests per client).</param>
/// <param name="WallSeconds">From the first request sent to the last answer.</param>
/// <param name="ImagesPerSecond">Requests / wall time.</param>
/// <param name="P50Seconds">Median latency of a request, as its client saw it (queue wait included).</param>
/// <param name="P95Seconds">95th-percentile latency (nearest rank).</param>
/// <param name="MeanBatchSize">Mean of the engine batch sizes the answers report (<c>x-localdiffusion-batch-size</c>).</param>
public sealed record ServerThroughputRow(int Clients, int Requests, double WallSeconds, double ImagesPerSecond, double P50Seconds, double P95Seconds, double MeanBatchSize);

/// <summary>The outcome of <see cref="ServerThroughputBenchmark.RunAsync"/>.</summary>
public sealed record ServerThroughputReport : BenchmarkReportHeader
{
    /// <summary>The server's <c>--max-batch</c>.</summary>
    public required int MaxBatch { get; init; }

    /// <summary>Classifier-free guidance scale.</summary>
    public required float GuidanceScale { get; init; }

    /// <summary>One row per number of clients.</summary>
    public required IReadOnlyList<ServerThroughputRow> Rows { get; init; }
}

/// <summary>
/// The server's throughput as its clients see it: a real server on a loopback port, N clients each sending its requests
/// over the OpenAI route one after another, all clients at once; images per second and the latency percentiles, with the
/// batch sizes the server formed. One warm-up request first (the load and the first-call cost are not in the rows).
/// </summary>
public static class ServerThroughputBenchmark
{
    /// <summary>Runs the benchmark.</summary>
    public static async Task<ServerThroughputReport> RunAsync(ServerThroughputOptions options, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Clients.Count == 0 || options.Clients.Any(c => c is < 1 or > 64))
            throw new InvalidRequestException(nameof(options.Clients), string.Join(",", options.Clients), null, _ => "Clients must be between 1 and 64 each.");
        if (options.RequestsPerClient is < 1 or > 100)
            throw new InvalidRequestException(nameof(options.RequestsPerClient), options.RequestsPerClient, null, _ => "RequestsPerClient must be between 1 and 100.");
        if (options.MaxBatch < 1) throw new InvalidRequestException(nameof(options.MaxBatch), options.MaxBatch, null, _ => "MaxBatch must be at least 1.");
        using var output = new TemporaryFolder();
        progress?.Report("starting the server");
        await using var server = await LocalDiffusionServer.StartAsync(new ServerOptions
        {
            Models = [options.Model], Host = "127.0.0.1", Port = 0, Device = options.Device, IntraOpThreads = options.IntraOpThreads,
            MaxBatch = options.MaxBatch, MaxQueue = Math.Max(16, options.Clients.Max()), LowMemory = options.LowMemory,
            OutputDirectory = output.Path, VaeTiling = options.Engine?.VaeTiling ?? new(),
        }, NullLoggerFactory.Instance, cancellationToken);
        progress?.Report("loading the model");
        await server.WhenModelsLoaded.WaitAsync(cancellationToken);
        var model = server.ModelIds[0];
        using var http = new HttpClient { BaseAddress = server.Address, Timeout = Timeout.InfiniteTimeSpan };
        var size = options.Width is { } w && options.Height is { } h ? $"{w}x{h}" : null;
        var seed = 0L;
        object Body() => new
        {
            model, prompt = $"a red circle, variation {Interlocked.Increment(ref seed)}", seed, n = 1, size, steps = options.Steps,
            guidance_scale = options.GuidanceScale, scheduler = options.Scheduler, response_format = "b64_json",
        };

        progress?.Report("warm-up request");
        await SendAsync(http, Body(), cancellationToken);
        var rows = new List<ServerThroughputRow>();
        foreach (var clients in options.Clients)
        {
            progress?.Report($"{clients} client{(clients == 1 ? "" : "s")} × {options.RequestsPerClient} requests");
            var clock = Stopwatch.StartNew();
            var answers = await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
            {
                var mine = new List<(double Seconds, int Batch)>();
                for (var r = 0; r < options.RequestsPerClient; r++) mine.Add(await SendAsync(http, Body(), cancellationToken));
                return mine;
            }));
            var wall = clock.Elapsed.TotalSeconds;
            var all = answers.SelectMany(a => a).ToList();
            var latencies = all.Select(a => a.Seconds).Order().ToArray();
            rows.Add(new ServerThroughputRow(clients, all.Count, wall, all.Count / wall, Percentile(latencies, 0.50), Percentile(latencies, 0.95),
                all.Average(a => a.Batch)));
        }
        return new ServerThroughputReport
        {
            Date = DateTime.UtcNow,
            Machine = BenchmarkReportHeader.ThisMachine,
            OnnxRuntime = BenchmarkReportHeader.OnnxRuntimeVersion,
            Model = options.Model,
            Device = options.Device,
            Width = options.Width ?? 0,
            Height = options.Height ?? 0,
            Steps = options.Steps,
            MaxBatch = options.MaxBatch,
            GuidanceScale = options.GuidanceScale,
            Rows = rows,
        };
    }

    private static async Task<(double Seconds, int Batch)> SendAsync(HttpClient http, object body, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using var response = await http.PostAsJsonAsync("v1/images/generations", body, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"the server answered {(int)response.StatusCode}: {text[..Math.Min(text.Length, 500)]}");
        var batch = response.Headers.TryGetValues("x-localdiffusion-batch-size", out var values)
            ? int.Parse(values.First(), CultureInfo.InvariantCulture) : 1;
        return (clock.Elapsed.TotalSeconds, batch);
    }

    // Nearest rank: the smallest latency at least this fraction of the requests did not exceed.
    private static double Percentile(double[] sorted, double fraction) =>
        sorted[Math.Clamp((int)Math.Ceiling(fraction * sorted.Length) - 1, 0, sorted.Length - 1)];

    private sealed class TemporaryFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("localdiffusion-bench-").FullName;

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
                // A file still held: the OS's temp cleaning takes it.
            }
        }
    }
}
