using System.Diagnostics;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Server.Generation;

/// <summary>A generation holding a slot: what <c>/sdapi/v1/progress</c> reports and <c>/sdapi/v1/interrupt</c> stops.</summary>
internal sealed class ActiveGeneration(string requestId, string model, int steps, CancellationToken requestAborted, bool finishOnInterrupt = false) : IDisposable
{
    private readonly CancellationTokenSource _cancel = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
    private readonly CancellationTokenSource _finishEarly = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private volatile GenerationProgress? _progress;
    private volatile GeneratedImage? _preview;

    public string RequestId { get; } = requestId;
    public string Model { get; } = model;

    /// <summary>What AUTOMATIC1111 calls the job: txt2img, or img2img (inpainting included) when it starts from an image.</summary>
    public string Kind { get; init; } = "txt2img";
    public int Steps { get; } = steps;
    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;

    /// <summary>Cancelled when the client disconnects or someone interrupts.</summary>
    public CancellationToken Token => _cancel.Token;

    /// <summary>
    /// Cancelled by an interrupt when the API answers one with the picture so far (A1111): the engine stops denoising and
    /// decodes (<see cref="GenerationRequest.FinishEarly"/>). Otherwise an interrupt cancels <see cref="Token"/>.
    /// </summary>
    public CancellationToken FinishEarly => _finishEarly.Token;

    public bool Interrupted { get; private set; }

    public TimeSpan Elapsed => _clock.Elapsed;

    public GenerationProgress? Progress => _progress;

    /// <summary>The latest decoded preview, if the request asked for previews.</summary>
    public GeneratedImage? Preview => _preview;

    /// <summary>Share of the work done, 0–1: denoising is most of it.</summary>
    public double Fraction => _progress is { } p ? p.Phase switch
    {
        GenerationPhase.Encoding => 0,
        GenerationPhase.Denoising => p.TotalSteps > 0 ? 0.95 * p.Step / p.TotalSteps : 0,
        GenerationPhase.Decoding => 0.95,
        _ => 1,
    } : 0;

    public void Report(GenerationProgress progress)
    {
        _progress = progress;
        if (progress.Preview is { Count: > 0 } preview) _preview = preview[0];
    }

    public void Interrupt()
    {
        Interrupted = true;
        try { (finishOnInterrupt ? _finishEarly : _cancel).Cancel(); } catch (ObjectDisposedException) { }
    }

    public void Dispose()
    {
        _cancel.Dispose();
        _finishEarly.Dispose();
    }
}
