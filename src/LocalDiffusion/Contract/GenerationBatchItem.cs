namespace LocalDiffusion;

/// <summary>One request of <c>StableDiffusionPipeline.GenerateBatchAsync</c>, with its own progress and cancellation.</summary>
/// <param name="Request">What to generate (its own seed, scheduler, guidance scale, prompts, ImageCount).</param>
/// <param name="Progress">This request's progress, as <c>StableDiffusionPipeline.GenerateAsync</c> reports it.</param>
/// <param name="CancellationToken">Cancels this request only; the rest of the batch goes on.</param>
public sealed record GenerationBatchItem(GenerationRequest Request, IProgress<GenerationProgress>? Progress = null,
    CancellationToken CancellationToken = default);
