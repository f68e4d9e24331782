using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Denoising;

/// <summary>
/// The scheduler loop: at each evaluation scale the latents, run the UNet on the CFG pair [uncond, cond],
/// combine uncond + g·(cond − uncond), and let the scheduler step. Latents are updated in place. After every stage the
/// values are checked for NaN/infinity, so a failure names the step and the stage where it began.
/// </summary>
internal sealed class DenoisingLoop(UNet unet, IScheduler scheduler, string schedulerName, TorchGenerator generator)
{
    /// <summary>UNet evaluations made.</summary>
    public int Evaluations { get; private set; }

    /// <summary>ONNX Runtime UNet calls made (more than evaluations when a static batch splits the CFG pair).</summary>
    public int Calls { get; private set; }

    /// <summary>
    /// Denoises <paramref name="latents"/> [n,4,h,w]. With <paramref name="classifierFree"/> (decided by
    /// <see cref="Model.ModelFamily.UsesClassifierFreeGuidance"/>) the conditioning holds 2n rows, unconditional first;
    /// otherwise n conditional rows. A 9-channel UNet's extra channels come from the conditioning's inputs. img2img starts at <paramref name="beginIndex"/>;
    /// <paramref name="afterStep"/> (inpainting's blend) sees the latents after each step with the step's index. A base model
    /// handing over to a refiner stops before <paramref name="endIndex"/> (see <see cref="ScheduleSplit"/>).
    /// </summary>
    /// <exception cref="GenerationNumericsException">The UNet, the guidance or the scheduler produced NaN or infinity.</exception>
    public void Run(Span<float> latents, int images, int latentHeight, int latentWidth, float guidance, bool classifierFree,
        UNet.Conditioning conditioning, RunOptions runOptions, Action<int, int> onEvaluation, CancellationToken cancellationToken,
        int beginIndex = 0, InpaintBlend? afterStep = null, int? endIndex = null)
    {
        var useCfg = classifierFree;
        var extraChannels = conditioning.Inputs.ExtraChannels;
        var size = latents.Length;
        var batch = useCfg ? 2 * images : images;
        var scaledPair = new float[batch * size / images];
        // An inpainting UNet takes [scaled latents ‖ mask ‖ masked-image latents] per row.
        var input = extraChannels is null ? scaledPair : new float[batch * size / images / UNet.LatentChannels * unet.InputChannels];
        var prediction = new float[scaledPair.Length];
        var guided = useCfg ? new float[size] : prediction;
        var timesteps = scheduler.Timesteps;
        var end = endIndex ?? timesteps.Count;
        for (var i = beginIndex; i < end; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            scheduler.ScaleModelInput(latents, scaledPair.AsSpan(0, size), i);
            if (useCfg) scaledPair.AsSpan(0, size).CopyTo(scaledPair.AsSpan(size, size));
            extraChannels?.Assemble(scaledPair, input, batch);
            unet.Predict(input, latentHeight, latentWidth, timesteps[i], conditioning, prediction, runOptions);
            Calls += conditioning.Chunks.Count;
            Evaluations++;
            if (!TensorPrimitives.IsFiniteAll<float>(prediction))
                throw Failure(NumericsStage.Unet, i, timesteps.Count,
                    TensorPrimitives.IsFiniteAll<float>(input)
                        ? $"the UNet ({unet.FilePath}) returned NaN/infinity from finite inputs: an fp16 UNet overflowing, or a broken export."
                        : $"the {schedulerName} scheduler's scaled model input was not finite.");
            if (useCfg)
            {
                ReadOnlySpan<float> uncond = prediction.AsSpan(0, size), cond = prediction.AsSpan(size, size);
                TensorPrimitives.Subtract(cond, uncond, guided);
                TensorPrimitives.MultiplyAdd(guided, guidance, uncond, guided);
                if (!TensorPrimitives.IsFiniteAll<float>(guided.AsSpan(0, size)))
                    throw Failure(NumericsStage.Guidance, i, timesteps.Count,
                        $"classifier-free guidance at scale {guidance.ToString(CultureInfo.InvariantCulture)} overflowed although the UNet's predictions were finite; use a smaller guidance scale.");
            }
            scheduler.Step(guided.AsSpan(0, size), i, latents, generator);
            if (!TensorPrimitives.IsFiniteAll<float>(latents))
                throw Failure(NumericsStage.Scheduler, i, timesteps.Count,
                    $"the {schedulerName} scheduler turned finite latents and a finite noise prediction into NaN/infinity " +
                    "(a division by a zero step, or a scheduler_config.json value out of its useful range).");
            afterStep?.AfterStep(i, latents);
            onEvaluation(i + 1 - beginIndex, end - beginIndex);
        }
        Debug.Assert(Evaluations == end - beginIndex);
    }

    private GenerationNumericsException Failure(NumericsStage stage, int index, int total, string cause) =>
        new(stage, index + 1,
            $"NaN/infinity at denoising step {index + 1} of {total} (timestep {scheduler.Timesteps[index].ToString(CultureInfo.InvariantCulture)}, {schedulerName}): {cause}");
}
