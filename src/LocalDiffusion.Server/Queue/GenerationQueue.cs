namespace LocalDiffusion.Server.Queue;

/// <summary>
/// The server's one bounded FIFO: <c>concurrency</c> generations run at once, up to <c>capacity</c> more wait in
/// arrival order, and a request that does not fit is refused at once (429) instead of piling up. A waiting request
/// whose token is cancelled (its client went away) leaves the queue without ever running.
/// </summary>
internal sealed class GenerationQueue(int capacity, int concurrency)
{
    private readonly Lock _gate = new();
    private readonly LinkedList<TaskCompletionSource> _waiting = new();
    private int _running;

    public int Capacity { get; } = capacity;

    public int Concurrency { get; } = concurrency;

    /// <summary>Requests waiting for a slot.</summary>
    public int Waiting { get { lock (_gate) return _waiting.Count; } }

    /// <summary>Generations holding a slot.</summary>
    public int Running { get { lock (_gate) return _running; } }

    /// <summary>Waits for a slot; dispose the lease to hand the slot on. Throws <see cref="QueueFullException"/> at once when full.</summary>
    public async Task<IDisposable> EnterAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        LinkedListNode<TaskCompletionSource> node;
        lock (_gate)
        {
            if (_running < Concurrency && _waiting.Count == 0)
            {
                _running++;
                return new Lease(this);
            }
            if (_waiting.Count >= Capacity) throw new QueueFullException(Capacity);
            node = _waiting.AddLast(new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
        using (cancellationToken.Register(() => Abandon(node, cancellationToken)))
            await node.Value.Task.ConfigureAwait(false);
        return new Lease(this);
    }

    private void Abandon(LinkedListNode<TaskCompletionSource> node, CancellationToken token)
    {
        lock (_gate)
        {
            // Still waiting: leave the line. Already handed a slot: the caller gets it and gives it back when its work sees the token.
            if (node.List is null) return;
            _waiting.Remove(node);
        }
        node.Value.TrySetCanceled(token);
    }

    private void Release()
    {
        TaskCompletionSource? next = null;
        lock (_gate)
        {
            if (_waiting.First is { } first)
            {
                _waiting.RemoveFirst();
                next = first.Value; // the slot passes straight on: _running stays the same
            }
            else
            {
                _running--;
            }
        }
        next?.TrySetResult();
    }

    private sealed class Lease(GenerationQueue queue) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) queue.Release();
        }
    }
}

/// <summary>The queue already holds as many waiting requests as it may.</summary>
internal sealed class QueueFullException(int capacity) : Exception($"The generation queue is full ({capacity} waiting).")
{
    public int Capacity { get; } = capacity;
}
