using LocalDiffusion.Pipeline;
namespace LocalDiffusion.Server.Queue;

/// <summary>
/// Requests the queue let through together: each member joins with its own request, progress and cancellation, and when
/// all have joined (or withdrawn) they run as one <see cref="StableDiffusionPipeline.GenerateBatchAsync"/>; each member
/// gets its own result, error or cancellation.
/// </summary>
internal sealed class GenerationBatch(int members)
{
    private readonly Lock _gate = new();
    private readonly List<(GenerationBatchItem Item, TaskCompletionSource<Task<GenerationResult>> Result)> _joined = [];
    private StableDiffusionPipeline? _pipeline;
    private int _expected = members;

    /// <summary>Requests the queue put in this batch.</summary>
    public int Members { get; } = members;

    /// <summary>Adds this member's request; the result comes when the whole batch has run its share.</summary>
    public async Task<GenerationResult> RunAsync(StableDiffusionPipeline pipeline, GenerationBatchItem item)
    {
        var result = new TaskCompletionSource<Task<GenerationResult>>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _pipeline = pipeline;
            _joined.Add((item, result));
        }
        StartIfComplete();
        return await await result.Task.ConfigureAwait(false);
    }

    /// <summary>A member that will not join after all (it failed before it could): the others do not wait for it.</summary>
    public void Withdraw()
    {
        lock (_gate) _expected--;
        StartIfComplete();
    }

    private void StartIfComplete()
    {
        List<(GenerationBatchItem Item, TaskCompletionSource<Task<GenerationResult>> Result)> joined;
        StableDiffusionPipeline pipeline;
        lock (_gate)
        {
            if (_joined.Count != _expected || _expected == 0 || _pipeline is null) return;
            (joined, pipeline) = ([.. _joined], _pipeline);
            _expected = -1; // started: never again
        }
        try
        {
            var tasks = pipeline.GenerateBatchAsync(joined.Select(j => j.Item).ToList());
            for (var i = 0; i < joined.Count; i++) joined[i].Result.SetResult(tasks[i]);
        }
        catch (Exception e)
        {
            foreach (var j in joined) j.Result.TrySetException(e);
        }
    }
}
