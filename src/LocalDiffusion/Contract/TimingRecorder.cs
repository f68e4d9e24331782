using System.Diagnostics;

namespace LocalDiffusion;

/// <summary>
/// Fills a <see cref="GenerationTimings"/> as a generation runs: stage marks on one clock, per-evaluation times in
/// arrays sized before the loop, so recording allocates nothing per step.
/// </summary>
internal sealed class TimingRecorder
{
    private long _mark = Stopwatch.GetTimestamp();
    private long _allocatedAtStart;
    private long _allocated;
    private TimeSpan _tokenize, _textEncoder, _prepare, _vae;
    private TimeSpan[] _evaluations = [], _unetCalls = [], _unetRuns = [];
    private int _evaluation, _unetCall, _allocationSteps;
    private const int SteadyAfter = 4;

    /// <summary>Ends the tokenizing stage.</summary>
    public void TokenizeDone() => _tokenize = Lap();

    /// <summary>Ends the text-encoding stage.</summary>
    public void TextEncoderDone() => _textEncoder = Lap();

    /// <summary>Ends preparation and sizes the per-evaluation records for <paramref name="evaluations"/>.</summary>
    public void BeginDenoising(int evaluations)
    {
        _prepare = Lap();
        _evaluations = new TimeSpan[evaluations];
        _unetCalls = new TimeSpan[evaluations];
        _unetRuns = new TimeSpan[evaluations];
    }

    /// <summary>Records one UNet evaluation's call and Run times (Stopwatch ticks).</summary>
    public void UnetCall(long callTicks, long runTicks)
    {
        if (_unetCall >= _unetCalls.Length) return;
        _unetCalls[_unetCall] = Stopwatch.GetElapsedTime(0, callTicks);
        _unetRuns[_unetCall] = Stopwatch.GetElapsedTime(0, runTicks);
        _unetCall++;
    }

    /// <summary>Ends one evaluation (called after its scheduler step).</summary>
    public void EvaluationDone()
    {
        if (_evaluation >= _evaluations.Length) return;
        _evaluations[_evaluation++] = Lap();
        // Counted from the end of evaluation SteadyAfter: the generation's tensors are made in the first, and a
        // multistep scheduler (made per generation) fills its history, up to 4 outputs, in its first steps.
        if (_evaluation == Math.Min(SteadyAfter, _evaluations.Length - 1))
            _allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
        if (_evaluation == _evaluations.Length && _evaluations.Length > 1)
        {
            _allocated = GC.GetAllocatedBytesForCurrentThread() - _allocatedAtStart;
            _allocationSteps = _evaluations.Length - Math.Min(SteadyAfter, _evaluations.Length - 1);
        }
    }

    /// <summary>Ends VAE decoding.</summary>
    public void DecodeDone() => _vae = Lap();

    public GenerationTimings Result() => new()
    {
        Tokenize = _tokenize,
        TextEncoder = _textEncoder,
        Prepare = _prepare,
        Evaluations = _evaluations,
        UnetCalls = _unetCalls,
        UnetRuns = _unetRuns,
        VaeDecode = _vae,
        StepAllocatedBytes = _allocated,
        StepAllocationSteps = _allocationSteps,
    };

    private TimeSpan Lap()
    {
        var now = Stopwatch.GetTimestamp();
        var elapsed = Stopwatch.GetElapsedTime(_mark, now);
        _mark = now;
        return elapsed;
    }
}
