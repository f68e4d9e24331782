using System.Diagnostics.Metrics;

namespace LocalDiffusion.Server.Metrics;

/// <summary>The server's instruments, on a <see cref="Meter"/> of its own (so several servers in one process stay apart).</summary>
internal sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "LocalDiffusion.Server";

    public ServerMetrics(Queue.GenerationQueue queue)
    {
        Meter = new Meter(MeterName, "1.0");
        Meter.CreateObservableGauge("localdiffusion.queue.waiting", () => queue.Waiting, "{request}", "Requests waiting for a generation slot.");
        Meter.CreateObservableGauge("localdiffusion.queue.running", () => queue.Running, "{generation}", "Generations running now.");
        Meter.CreateObservableGauge("localdiffusion.queue.capacity", () => queue.Capacity, "{request}", "Requests that may wait (--max-queue).");
        Generations = Meter.CreateCounter<long>("localdiffusion.generations", "{generation}", "Generations finished, by model and outcome: ok, invalid_request (the engine refused the request: a 400), error (the server failed: a 500), cancelled, interrupted.");
        Rejected = Meter.CreateCounter<long>("localdiffusion.queue.rejected", "{request}", "Requests refused with 429 because the queue was full.");
        Images = Meter.CreateCounter<long>("localdiffusion.images", "{image}", "Images generated, by model.");
        GenerationSeconds = Meter.CreateHistogram<double>("localdiffusion.generation.duration", "s", "Wall time of a generation, queue wait excluded.");
        StepSeconds = Meter.CreateHistogram<double>("localdiffusion.step.duration", "s", "Mean time of one UNet evaluation in a generation.");
        BatchSize = Meter.CreateHistogram<double>("localdiffusion.batch.size", "{request}",
            "Requests whose UNet calls ran together with a request (itself included; 1 = alone), recorded once per finished request.");
        QueueWaitSeconds = Meter.CreateHistogram<double>("localdiffusion.queue.wait", "s", "Time a request waited for a slot.");
    }

    public Meter Meter { get; }
    public Counter<long> Generations { get; }
    public Counter<long> Rejected { get; }
    public Counter<long> Images { get; }
    public Histogram<double> GenerationSeconds { get; }
    public Histogram<double> StepSeconds { get; }
    public Histogram<double> QueueWaitSeconds { get; }
    public Histogram<double> BatchSize { get; }

    public void Dispose() => Meter.Dispose();
}
