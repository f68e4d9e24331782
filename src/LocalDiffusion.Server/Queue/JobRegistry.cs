using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Generation;

namespace LocalDiffusion.Server.Queue;

/// <summary>
/// The jobs the server holds now, waiting or running, by job id (<see cref="JobId"/>): what <c>GET /v1/queue</c> lists
/// and <c>DELETE /v1/queue/{id}</c> cancels. An id names one live job at a time, so a cancel cannot hit the wrong one.
/// </summary>
internal sealed class JobRegistry
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Job> _jobs = new(StringComparer.Ordinal);

    /// <summary>Claims <paramref name="id"/> for a new job; 409 naming the header when a live job has it already.</summary>
    public Job Add(string id, string model, string kind)
    {
        var job = new Job(this, id, model, kind);
        lock (_gate)
        {
            if (!_jobs.TryAdd(id, job))
                throw new ApiException(409, $"A waiting or running job already has the id '{id}'; send a new '{JobId.Header}' for each request.",
                    "invalid_request_error", JobId.Header, "job_id_in_use");
        }
        return job;
    }

    /// <summary>The live job with this id, if any.</summary>
    public Job? Find(string id)
    {
        lock (_gate) return _jobs.GetValueOrDefault(id);
    }

    private void Remove(Job job)
    {
        lock (_gate)
        {
            if (_jobs.TryGetValue(job.Id, out var current) && ReferenceEquals(current, job)) _jobs.Remove(job.Id);
        }
    }

    /// <summary>One request's job, from the queue to its end; dispose when the request's generation is over.</summary>
    internal sealed class Job(JobRegistry registry, string id, string model, string kind) : IDisposable
    {
        private readonly CancellationTokenSource _cancel = new();
        private ActiveGeneration? _running;

        public string Id { get; } = id;
        public string Model { get; } = model;

        /// <summary>txt2img or img2img, as <see cref="ActiveGeneration.Kind"/>.</summary>
        public string Kind { get; } = kind;

        /// <summary>Cancelled when someone cancels the job while it waits.</summary>
        public CancellationToken Cancelled => _cancel.Token;

        /// <summary>The job has a slot now: a cancel interrupts <paramref name="generation"/> instead.</summary>
        public void Started(ActiveGeneration generation)
        {
            lock (registry._gate) _running = generation;
            if (_cancel.IsCancellationRequested) generation.Interrupt(); // cancelled in the moment it got its slot
        }

        /// <summary>Takes the job out of the queue, or stops it as <c>/sdapi/v1/interrupt</c> would.</summary>
        public void Cancel()
        {
            // Cancel first, then look: a job that gets its slot meanwhile sees the cancel in Started.
            try { _cancel.Cancel(); } catch (ObjectDisposedException) { }
            ActiveGeneration? running;
            lock (registry._gate) running = _running;
            running?.Interrupt();
        }

        public void Dispose()
        {
            registry.Remove(this);
            lock (registry._gate) _running = null;
            _cancel.Dispose();
        }
    }
}
