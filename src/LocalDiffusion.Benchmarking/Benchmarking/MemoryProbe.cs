using System.Diagnostics;

namespace LocalDiffusion.Benchmarking;

/// <summary>
/// Measures one generation's peak resident memory and managed allocations. On Linux the kernel's peak-RSS mark
/// (VmHWM) is reset before each run through /proc/self/clear_refs, so the peak is that run's own; elsewhere the
/// process's peak working set so far is all there is, and the report says so.
/// </summary>
internal sealed class MemoryProbe
{
    private const string ClearRefs = "/proc/self/clear_refs";
    private readonly Process _process = Process.GetCurrentProcess();
    private readonly bool _canReset = OperatingSystem.IsLinux() && TryResetPeak();
    private long _allocatedAtStart;

    /// <summary>How the peak is measured, for the report.</summary>
    public string Method => _canReset
        ? "peak resident set (VmHWM) of the process during each run, reset before it through /proc/self/clear_refs; managed bytes from GC.GetTotalAllocatedBytes"
        : "peak working set of the process so far (Process.PeakWorkingSet64; cannot be reset on this OS); managed bytes from GC.GetTotalAllocatedBytes";

    public void Begin()
    {
        if (_canReset) TryResetPeak();
        _allocatedAtStart = GC.GetTotalAllocatedBytes(precise: true);
    }

    /// <summary>The peak working set and the managed bytes allocated since <see cref="Begin"/>.</summary>
    public (long PeakWorkingSet, long Allocated) End()
    {
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - _allocatedAtStart;
        _process.Refresh();
        return (_process.PeakWorkingSet64, allocated);
    }

    private static bool TryResetPeak()
    {
        try
        {
            File.WriteAllText(ClearRefs, "5"); // 5: reset the peak RSS mark (proc(5), clear_refs)
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
