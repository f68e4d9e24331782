using LocalDiffusion.Pipeline;
namespace LocalDiffusion.Server.Queue;

/// <summary>
/// The server's one bounded FIFO: <c>concurrency</c> generations run at once, up to <c>capacity</c> more wait in
/// arrival order, and a request that does not fit is refused at once (429) instead of piling up. A waiting request
/// whose token is cancelled (its client went away) leaves the queue without ever running.
/// Dynamic batching (<c>maxBatchImages</c> &gt; 1): when a slot frees, the first waiting request takes it together with
/// the later waiting requests that can be denoised with it (<see cref="BatchCandidate.CanJoin"/>), up to
/// <c>maxBatchImages</c> images in all; they share the slot as one <see cref="GenerationBatch"/>, which is handed back when
/// the last of them is done. A request that finds a slot free runs at once, alone.
/// </summary>
internal sealed class GenerationQueue(int capacity, int concurrency, int maxBatchImages = 1)
{
    private readonly Lock _gate = new();
    private readonly LinkedList<Waiter> _waiting = new();
    private int _running;

    public int Capacity { get; } = capacity;

    public int Concurrency { get; } = concurrency;

    /// <summary>Most images one batch may hold; 1: no batching.</summary>
    public int MaxBatchImages { get; } = maxBatchImages;

    /// <summary>Requests waiting for a slot.</summary>
    public int Waiting { get { lock (_gate) return _waiting.Count; } }

    /// <summary>Generations (or batches of them) holding a slot.</summary>
    public int Running { get { lock (_gate) return _running; } }

    /// <summary>Waits for a slot; dispose the lease to hand the slot on. Throws <see cref="QueueFullException"/> at once when full.</summary>
    public async Task<QueueSlot> EnterAsync(CancellationToken cancellationToken, BatchCandidate? candidate = null, string? jobId = null)
    {
        cancellationToken.ThrowIfCancellationRequested();
        LinkedListNode<Waiter> node;
        lock (_gate)
        {
            if (_running < Concurrency && _waiting.Count == 0)
            {
                _running++;
                return new QueueSlot(new Lease(this, 1).Leave, null);
            }
            if (_waiting.Count >= Capacity) throw new QueueFullException(Capacity);
            node = _waiting.AddLast(new Waiter(new TaskCompletionSource<QueueSlot>(TaskCreationOptions.RunContinuationsAsynchronously), candidate, jobId));
        }
        using (cancellationToken.Register(() => Abandon(node, cancellationToken)))
            return await node.Value.Slot.Task.ConfigureAwait(false);
    }

    private void Abandon(LinkedListNode<Waiter> node, CancellationToken token)
    {
        lock (_gate)
        {
            // Still waiting: leave the line. Already handed a slot: the caller gets it and gives it back when its work sees the token.
            if (node.List is null) return;
            _waiting.Remove(node);
        }
        node.Value.Slot.TrySetCanceled(token);
    }

    private void Release()
    {
        List<Waiter>? next = null;
        lock (_gate)
        {
            if (_waiting.First is { } first)
            {
                _waiting.RemoveFirst();
                next = [first.Value]; // the slot passes straight on: _running stays the same
                if (MaxBatchImages > 1 && first.Value.Candidate is { } lead)
                {
                    var images = lead.Images;
                    for (var node = _waiting.First; node is not null && images < MaxBatchImages;)
                    {
                        var following = node.Next;
                        if (node.Value.Candidate is { } c && images + c.Images <= MaxBatchImages && lead.CanJoin(c))
                        {
                            _waiting.Remove(node);
                            next.Add(node.Value);
                            images += c.Images;
                        }
                        node = following;
                    }
                }
            }
            else
            {
                _running--;
            }
        }
        if (next is null) return;
        var lease = new Lease(this, next.Count);
        var batch = next.Count > 1 ? new GenerationBatch(next.Count) : null;
        foreach (var waiter in next) waiter.Slot.TrySetResult(new QueueSlot(lease.Leave, batch));
    }

    /// <summary>The job ids of the waiting requests, first in line first (null where a request entered without one).</summary>
    public IReadOnlyList<string?> WaitingJobIds()
    {
        lock (_gate) return _waiting.Select(w => w.JobId).ToList();
    }

    private sealed record Waiter(TaskCompletionSource<QueueSlot> Slot, BatchCandidate? Candidate, string? JobId);

    // One slot, held by `holders` requests (a batch's members); handed on when the last of them lets go.
    private sealed class Lease(GenerationQueue queue, int holders)
    {
        private int _holders = holders;

        public void Leave()
        {
            if (Interlocked.Decrement(ref _holders) == 0) queue.Release();
        }
    }

    /// <summary>A request's hold on a slot: alone, or as a member of <see cref="Batch"/>. Dispose once when done.</summary>
    internal sealed class QueueSlot : IDisposable
    {
        private readonly Action _leave;
        private int _released;

        internal QueueSlot(Action leave, GenerationBatch? batch) => (_leave, Batch) = (leave, batch);

        /// <summary>The batch this request runs in, or null when it runs alone.</summary>
        public GenerationBatch? Batch { get; }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) _leave();
        }
    }
}

/// <summary>What the queue needs to know to batch a waiting request: its model's pipeline and the request.</summary>
internal sealed record BatchCandidate(StableDiffusionPipeline Pipeline, GenerationRequest Request)
{
    public int Images => Request.ImageCount;

    /// <summary>Same model, and the engine can denoise the two together (<see cref="StableDiffusionPipeline.CanBatch"/>).</summary>
    public bool CanJoin(BatchCandidate other) => ReferenceEquals(Pipeline, other.Pipeline) && Pipeline.CanBatch(Request, other.Request);
}

/// <summary>The queue already holds as many waiting requests as it may.</summary>
internal sealed class QueueFullException(int capacity) : Exception($"The generation queue is full ({capacity} waiting).")
{
    public int Capacity { get; } = capacity;
}
