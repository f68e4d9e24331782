using LocalDiffusion.Imaging;

namespace LocalDiffusion;

/// <summary>The outcome of one generation.</summary>
/// <param name="Images">One image per requested image, in batch order.</param>
/// <param name="Seed">The seed used (the one asked for, or the one picked).</param>
/// <param name="FinalLatents">The denoised latents before VAE decoding, [ImageCount,4,h,w].</param>
/// <param name="LatentShape">The shape of <paramref name="FinalLatents"/>.</param>
/// <param name="Elapsed">Wall time of the whole generation.</param>
public sealed record GenerationResult(IReadOnlyList<GeneratedImage> Images, long Seed, float[] FinalLatents, int[] LatentShape, TimeSpan Elapsed)
{
    /// <summary>Things the user should know, e.g. that a long prompt was truncated.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>How many times the UNet ran (counting a batched CFG pair as one evaluation per step).</summary>
    public int UnetEvaluations { get; init; }

    /// <summary>How many ONNX Runtime UNet calls were made (two per evaluation when a static batch of 1 splits CFG).</summary>
    public int UnetCalls { get; init; }

    /// <summary>
    /// Requests whose UNet calls ran together with this one's, itself included: 1 when it ran alone, more when it was
    /// denoised in a batch (<c>StableDiffusionPipeline.GenerateBatchAsync</c>).
    /// </summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>
    /// Each image's seed, in batch order: <see cref="Seed"/> + i with <see cref="GenerationRequest.SeedPerImage"/>, else
    /// <see cref="Seed"/> for every image (one generator drew them all).
    /// </summary>
    public IReadOnlyList<long> Seeds { get; init; } = [];

    /// <summary>The scheduler that ran.</summary>
    public string Scheduler { get; init; } = "";

    /// <summary>Where the time went, stage by stage and evaluation by evaluation.</summary>
    public GenerationTimings Timings { get; init; } = new();
}
