using System.Diagnostics;
using LocalDiffusion.Denoising;
using LocalDiffusion.Latents;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// One request on its way through the stages: what prompt encoding and the initial latents made of it, its own scheduler,
/// generator, progress, cancellation and ONNX Runtime run options (for its own encoder and decoder calls), and its share
/// of the denoising loop. A generation has one; a batch (<see cref="StableDiffusionPipeline.GenerateBatchAsync"/>) has
/// several that share the UNet calls.
/// </summary>
internal sealed class GenerationRun
{
    public required GenerationRequest Request { get; init; }
    public required (IScheduler Scheduler, string Name) Scheduler { get; init; }
    public required int LatentH { get; init; }
    public required int LatentW { get; init; }
    public required IProgress<GenerationProgress>? Progress { get; init; }
    public required RunOptions RunOptions { get; init; }
    public required Stopwatch Clock { get; init; }
    public required CancellationToken Token { get; init; }
    public required bool UseCfg { get; init; }
    public required List<string> Warnings { get; init; }
    public required TimingRecorder Timings { get; init; }

    /// <summary>The UNet's conditioning rows of this request (inpainting channels included).</summary>
    public required UNetInputs Inputs { get; init; }
    public required long Seed { get; init; }
    public required TorchGenerator Generator { get; init; }
    public required PreparedLatents Start { get; init; }

    /// <summary>The evaluation index the denoising stops before (earlier than the schedule's end when a base hands over to a refiner).</summary>
    public required int End { get; init; }

    /// <summary>The request's share of the denoising loop, once it has begun.</summary>
    public DenoisingMember? Member { get; set; }

    /// <summary>ONNX Runtime UNet calls made while this run took part.</summary>
    public int UnetCalls { get; set; }

    /// <summary>Requests denoised together with this one, itself included.</summary>
    public int BatchSize { get; set; } = 1;
}
