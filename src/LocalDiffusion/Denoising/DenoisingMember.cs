using System.Runtime.ExceptionServices;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Denoising;

/// <summary>
/// One request's share of a <see cref="DenoisingLoop"/>: its latents [Images,4,h,w] (updated in place), its own
/// scheduler and generator (stochastic schedulers draw from it), guidance scale, inpainting blend, progress callback and
/// cancellation. A member that fails (NaN in its rows, its callback throws) or is cancelled leaves the loop alone; the
/// others go on.
/// </summary>
internal sealed class DenoisingMember(IScheduler scheduler, string schedulerName, TorchGenerator generator, float[] latents, int images,
    float guidance, CancellationToken cancellationToken)
{
    private int _retired;

    public IScheduler Scheduler { get; } = scheduler;

    public string SchedulerName { get; } = schedulerName;

    public TorchGenerator Generator { get; } = generator;

    /// <summary>[Images,4,h,w], denoised in place.</summary>
    public float[] Latents { get; } = latents;

    public int Images { get; } = images;

    public float Guidance { get; } = guidance;

    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>Inpainting's blend with a 4-channel UNet, applied to this member's latents after each step.</summary>
    public InpaintBlend? Blend { get; init; }

    /// <summary>Called after each of this member's steps with (evaluations done, evaluations in all).</summary>
    public Action<int, int>? OnEvaluation { get; init; }

    /// <summary>When cancelled, the member leaves the loop without an error, its latents as far as they got (see <see cref="GenerationRequest.FinishEarly"/>).</summary>
    public CancellationToken FinishEarly { get; init; }

    /// <summary>The member left through <see cref="FinishEarly"/>, after <see cref="Evaluations"/> evaluations.</summary>
    public bool StoppedEarly { get; private set; }

    /// <summary>Called once when the member leaves the loop early (failed or cancelled).</summary>
    public Action? OnRetired { get; init; }

    /// <summary>UNet evaluations this member took part in.</summary>
    public int Evaluations { get; internal set; }

    /// <summary>Why the member left the loop early, or null while it runs (and when it finished).</summary>
    public ExceptionDispatchInfo? Error { get; private set; }

    public bool Active => Volatile.Read(ref _retired) == 0;

    /// <summary>Takes the member out of the loop with <paramref name="error"/>; later calls keep the first error.</summary>
    public void Retire(Exception error)
    {
        if (Interlocked.Exchange(ref _retired, 1) != 0) return;
        Error = ExceptionDispatchInfo.Capture(error);
        OnRetired?.Invoke();
    }

    /// <summary>Takes the member out of the loop without an error: its latents are kept as they are.</summary>
    public void StopEarly()
    {
        if (Interlocked.Exchange(ref _retired, 1) != 0) return;
        StoppedEarly = true;
        OnRetired?.Invoke();
    }

    /// <summary>Rethrows the member's error, if it has one, with its original stack trace.</summary>
    public void ThrowIfFailed() => Error?.Throw();
}
