using System.Collections.Concurrent;

namespace LocalDiffusion.Server.Generation;

/// <summary>The generations running now, oldest first.</summary>
internal sealed class ActiveGenerations
{
    private readonly ConcurrentDictionary<ActiveGeneration, byte> _running = new();

    public void Add(ActiveGeneration generation) => _running.TryAdd(generation, 0);

    public void Remove(ActiveGeneration generation) => _running.TryRemove(generation, out _);

    public IReadOnlyList<ActiveGeneration> Snapshot() => _running.Keys.OrderBy(g => g.Started).ToList();

    /// <summary>Stops every running generation (A1111's interrupt); returns how many.</summary>
    public int InterruptAll()
    {
        var all = Snapshot();
        foreach (var g in all) g.Interrupt();
        return all.Count;
    }
}
