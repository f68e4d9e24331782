using LocalDiffusion.Model;
using LocalDiffusion.Upscaling;
using System.Diagnostics;
using LocalDiffusion.Imaging;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// Runs AUTOMATIC1111's hires fix with a pipeline: the first pass as requested, then for each image its enlargement
/// (<see cref="HiresOptions.Upscaler"/>) and an img2img second pass at the hires size from the same seed.
/// </summary>
public static class HiresFix
{
    /// <summary>The checked plan for <paramref name="request"/> on <paramref name="pipeline"/>'s model (no work done).</summary>
    /// <exception cref="ArgumentException">The request is not text-to-image, or an option cannot work; the ParamName says which.</exception>
    public static HiresPlan Plan(StableDiffusionPipeline pipeline, GenerationRequest request, HiresOptions options)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(request);
        if (request.InitImage is not null || request.InitLatents is not null)
            throw new InvalidRequestException("Hires", null, null, _ => "The hires fix enlarges a text-to-image first pass; it does not take an init image or init latents.");
        var info = pipeline.Info;
        return HiresPlan.Create(options, request.Width ?? info.NativeWidth, request.Height ?? info.NativeHeight,
            request.Steps ?? info.Family.DefaultSteps, info.SizeMultiple);
    }

    /// <summary>
    /// Both passes. The result's images are the second passes' (at the hires size, their infotext the first pass's with the
    /// hires fields), its latents theirs; seeds, scheduler and warnings are the first pass's, with the second passes' warnings.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="Plan"/>, before any work.</exception>
    public static async Task<GenerationResult> RunAsync(StableDiffusionPipeline pipeline, GenerationRequest request, HiresOptions options,
        IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var plan = Plan(pipeline, request, options);
        var clock = Stopwatch.StartNew();
        var first = await pipeline.GenerateAsync(request, progress, cancellationToken).ConfigureAwait(false);
        var images = new List<GeneratedImage>(first.Images.Count);
        var latents = new List<float>();
        var warnings = new List<string>(first.Warnings);
        var evaluations = first.UnetEvaluations;
        int[] shape = [];
        for (var j = 0; j < first.Images.Count; j++)
        {
            var second = await plan.SecondPassAsync(request, first, j, cancellationToken).ConfigureAwait(false);
            var result = await pipeline.GenerateAsync(second, progress, cancellationToken).ConfigureAwait(false);
            var image = result.Images[0];
            images.Add(new GeneratedImage(image.Width, image.Height, image.Rgb, plan.Infotext(first.Images[j].Parameters)));
            latents.AddRange(result.FinalLatents);
            warnings.AddRange(result.Warnings);
            evaluations += result.UnetEvaluations;
            shape = result.LatentShape;
        }
        shape = [images.Count, .. shape.Skip(1)];
        return first with
        {
            Images = images, FinalLatents = [.. latents], LatentShape = shape, Warnings = warnings, UnetEvaluations = evaluations,
            Elapsed = clock.Elapsed,
        };
    }
}
