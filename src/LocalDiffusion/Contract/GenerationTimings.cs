namespace LocalDiffusion;

/// <summary>
/// Where a generation's time went, measured by the pipeline itself (for <c>localdiffusion bench pipeline</c> and
/// for applications that want to show or log it). Per-evaluation lists are in the order the UNet ran.
/// </summary>
public sealed record GenerationTimings
{
    /// <summary>Tokenizing the prompt and negative prompt.</summary>
    public TimeSpan Tokenize { get; init; }

    /// <summary>The text encoder, and preparing its output as the UNet's conditioning.</summary>
    public TimeSpan TextEncoder { get; init; }

    /// <summary>Drawing the initial noise and setting up the scheduler.</summary>
    public TimeSpan Prepare { get; init; }

    /// <summary>Each denoising evaluation as a whole: scaling the input, the UNet, guidance and the scheduler step.</summary>
    public IReadOnlyList<TimeSpan> Evaluations { get; init; } = [];

    /// <summary>Each evaluation's UNet call as the engine makes it: writing the inputs, ONNX Runtime, reading the output.</summary>
    public IReadOnlyList<TimeSpan> UnetCalls { get; init; } = [];

    /// <summary>Each evaluation's time inside ONNX Runtime's <c>Run</c> alone (all its calls, when a static batch splits CFG).</summary>
    public IReadOnlyList<TimeSpan> UnetRuns { get; init; } = [];

    /// <summary>Decoding the latents to RGB8 pixels (every image).</summary>
    public TimeSpan VaeDecode { get; init; }

    /// <summary>
    /// Managed bytes the generation's thread allocated over the last <see cref="StepAllocationSteps"/> evaluations
    /// (all but the first four, where the generation's tensors are made and a multistep scheduler fills its
    /// history; all but the first when there are fewer): the steady allocation per step is their ratio.
    /// </summary>
    public long StepAllocatedBytes { get; init; }

    /// <summary>The evaluations <see cref="StepAllocatedBytes"/> covers.</summary>
    public int StepAllocationSteps { get; init; }

    /// <summary>The time per evaluation spent outside the UNet call: input scaling, guidance and the scheduler step.</summary>
    public IEnumerable<TimeSpan> SchedulerSteps => Evaluations.Zip(UnetCalls, (e, u) => e - u);

    /// <summary>The share of the denoising time spent outside ONNX Runtime's <c>Run</c> (the engine's own overhead).</summary>
    public double EngineOverheadShare
    {
        get
        {
            var total = Evaluations.Sum(t => t.Ticks);
            return total == 0 ? 0 : (total - UnetRuns.Sum(t => t.Ticks)) / (double)total;
        }
    }
}
