namespace LocalDiffusion;

/// <summary>Progress of a generation, reported after each UNet evaluation and once more when decoding ends.</summary>
/// <param name="Step">Evaluations done so far (equals <paramref name="TotalSteps"/> when denoising is over).</param>
/// <param name="TotalSteps">Evaluations in total.</param>
/// <param name="Elapsed">Time since the generation started.</param>
public sealed record GenerationProgress(int Step, int TotalSteps, TimeSpan Elapsed)
{
    /// <summary>What the pipeline is doing: encoding, denoising, decoding or done.</summary>
    public GenerationPhase Phase { get; init; } = GenerationPhase.Denoising;

    /// <summary>UNet evaluations per sampler step: 2 for second-order samplers (Heun, DPM2), else 1.</summary>
    public int EvaluationsPerStep { get; init; } = 1;

    /// <summary>
    /// Sampler steps done, as AUTOMATIC1111 and the user count them: Heun's 2n − 1 evaluations are n steps, so a Heun
    /// generation of 150 steps reports 1…150, not 1…299.
    /// </summary>
    public int SamplerStep => (Step + EvaluationsPerStep - 1) / EvaluationsPerStep;

    /// <summary>Sampler steps in all (see <see cref="SamplerStep"/>).</summary>
    public int SamplerSteps => (TotalSteps + EvaluationsPerStep - 1) / EvaluationsPerStep;

    /// <summary>
    /// The current latents decoded, one image per batch item, at the steps <see cref="GenerationRequest.PreviewSteps"/>
    /// asks for; null otherwise. A preview of a noisy latent is noisy: it shows where the picture is heading.
    /// </summary>
    public IReadOnlyList<Imaging.GeneratedImage>? Preview { get; init; }
}

/// <summary>Stages of a generation.</summary>
public enum GenerationPhase
{
    /// <summary>Tokenizing and running the text encoder.</summary>
    Encoding,
    /// <summary>The scheduler loop.</summary>
    Denoising,
    /// <summary>The VAE decoder.</summary>
    Decoding,
    /// <summary>Finished.</summary>
    Done,
}
