using System.Diagnostics;
using System.Globalization;
using LocalDiffusion.Denoising;
using LocalDiffusion.Model;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Pipeline;

public sealed partial class StableDiffusionPipeline
{
    /// <summary>
    /// SDXL's base → refiner hand-off (diffusers' "ensemble of expert denoisers", AUTOMATIC1111's "Refiner, switch at"):
    /// this model runs the first <paramref name="switchAt"/> of the schedule (<see cref="GenerationRequest.DenoisingEnd"/>),
    /// <paramref name="refiner"/> continues from its latents for the rest (<see cref="GenerationRequest.DenoisingStart"/>)
    /// with the same prompts, steps, guidance, scheduler and size, drawing from the same random generator (as diffusers
    /// does when one generator is passed to both pipelines), and decodes the images with its VAE. Progress counts the
    /// steps of both models. Both pipelines must stay loaded until the task completes; each may serve other requests.
    /// </summary>
    /// <param name="request">What to generate; it must not set <see cref="GenerationRequest.DenoisingEnd"/>,
    /// <see cref="GenerationRequest.DenoisingStart"/> or <see cref="GenerationRequest.InitLatents"/> itself.</param>
    /// <param name="refiner">The model that finishes the schedule: usually an SDXL refiner, or any model sharing this one's latent space.</param>
    /// <param name="switchAt">The fraction of the schedule this model runs, in (0, 1); diffusers' example and A1111 use 0.8.</param>
    /// <param name="progress">Steps of both models, then decoding.</param>
    /// <param name="cancellationToken">Stops either model between UNet evaluations.</param>
    /// <exception cref="ArgumentException">A request field, <paramref name="switchAt"/> or <paramref name="refiner"/> that
    /// cannot work, before any work is done.</exception>
    public Task<GenerationResult> GenerateWithRefinerAsync(GenerationRequest request, StableDiffusionPipeline refiner, float switchAt = 0.8f,
        IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(refiner);
        if (!_model.SplitsSchedules || !refiner._model.SplitsSchedules)
            throw new InvalidRequestException(nameof(refiner), null, null, called => $"The base → {called} hand-off is SDXL's; {(!_model.SplitsSchedules ? Info.Family.Name : refiner.Info.Family.Name)} has no refiner.");
        CheckRefiner(request, refiner, switchAt);
        var seed = request.Seed ?? Random.Shared.NextInt64(0, uint.MaxValue);
        // With an SDXL refiner, each model takes the micro-conditioning its time ids hold (as diffusers' two pipelines do):
        // the base its target sizes, the refiner its aesthetic scores; original size and crop go to both.
        var sdxlRefiner = refiner._model.TakesAestheticScores;
        var first = Prepare(request with
        {
            DenoisingEnd = switchAt, Seed = seed, PreviewSteps = null,
            AestheticScore = sdxlRefiner ? null : request.AestheticScore,
            NegativeAestheticScore = sdxlRefiner ? null : request.NegativeAestheticScore,
        });
        int width = first.LatentW * Vae.VaeDecoder.Factor, height = first.LatentH * Vae.VaeDecoder.Factor;
        // Checked now with stand-in latents of the right size, so a refiner that cannot continue fails before any work.
        var secondRequest = request with
        {
            InitImage = null, MaskImage = null, Strength = null, InitLatents = new float[first.LatentH * first.LatentW * _model.Latents.Channels],
            DenoisingStart = switchAt, Width = width, Height = height, Seed = seed, PreviewSteps = null,
            // One schedule split between the two: the refiner runs the base's step count and guidance (defaults included).
            Steps = first.Request.Steps, GuidanceScale = first.Request.GuidanceScale,
            TargetSize = sdxlRefiner ? null : request.TargetSize,
            NegativeTargetSize = sdxlRefiner ? null : request.NegativeTargetSize,
        };
        var second = refiner.Prepare(secondRequest);
        var baseSteps = ScheduleSplit.EndIndex(first.Scheduler.Scheduler, switchAt, _model.TrainTimesteps)
            - (request.InitImage is null ? 0 : BeginIndexOf(first));
        var refinerSteps = second.Scheduler.Scheduler.Timesteps.Count - ScheduleSplit.StartIndex(second.Scheduler.Scheduler, switchAt, refiner._model.TrainTimesteps);
        var total = baseSteps + refinerSteps;

        Enter();
        try
        {
            refiner.Enter();
        }
        catch
        {
            Exit();
            throw;
        }
        return Task.Run(() =>
        {
            _generationsOnThisThread++;
            try
            {
                var clock = Stopwatch.StartNew();
                var (handed, generator) = _stages.Generate(first, Shifted(progress, 0, total, final: false), null, decode: false, cancellationToken);
                var (result, _) = refiner._stages.Generate(second with { Request = second.Request with { InitLatents = handed.FinalLatents } },
                    Shifted(progress, baseSteps, total, final: true), generator, decode: true, cancellationToken);
                return result with
                {
                    Elapsed = clock.Elapsed,
                    Warnings = [.. handed.Warnings, .. result.Warnings],
                    UnetEvaluations = handed.UnetEvaluations + result.UnetEvaluations,
                    UnetCalls = handed.UnetCalls + result.UnetCalls,
                };
            }
            finally
            {
                _generationsOnThisThread--;
                refiner.Exit();
                Exit();
            }
        }, CancellationToken.None);
    }

    private static int BeginIndexOf(RunPreparation.PreparedRun run) =>
        StrengthSchedule.BeginIndex(run.Request.StepCount, run.Request.EffectiveStrength, run.Scheduler.Scheduler.Order).BeginIndex;

    private void CheckRefiner(GenerationRequest request, StableDiffusionPipeline refiner, float switchAt)
    {
        if (!(float.IsFinite(switchAt) && switchAt is > 0 and < 1))
            throw new InvalidRequestException(nameof(switchAt), switchAt, null, called => "The refiner switch point must be a fraction of the schedule strictly between 0 and 1 (e.g. 0.8).");
        if (ReferenceEquals(refiner, this))
            throw new InvalidRequestException(nameof(refiner), null, null, called => $"The {called} must be another model than the base.");
        if (Info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner)
            throw new InvalidRequestException(nameof(refiner), null, null, called => $"{Info.Root} is an SDXL {called}: it finishes a schedule, so it cannot start one; use the base model here and pass the refiner.");
        if (refiner.Info.Family.Inpainting || request.MaskImage is not null)
            throw new ModelIncompatibleException(request.MaskImage is not null ? nameof(request.MaskImage) : nameof(refiner), refiner.Info.Root,
                called => $"{called}: the refiner hand-off runs text-to-image and img2img; inpainting with a refiner is not supported.");
        if (request.DenoisingEnd is not null || request.DenoisingStart is not null || request.InitLatents is not null)
            throw new InvalidRequestException(
                request.DenoisingEnd is not null ? nameof(request.DenoisingEnd) : request.DenoisingStart is not null ? nameof(request.DenoisingStart) : nameof(request.InitLatents),
                request.DenoisingEnd ?? request.DenoisingStart, null,
                called => $"{called}: DenoisingEnd, DenoisingStart and InitLatents are set by the refiner hand-off itself; leave them unset.");
        // Latents only mean the same thing to two models whose VAEs scale them alike (SDXL base and refiner share a VAE).
        if (Math.Abs(refiner.Info.Family.VaeScalingFactor - Info.Family.VaeScalingFactor) > 1e-6f)
            throw new InvalidRequestException(nameof(refiner), null, null, called => string.Create(CultureInfo.InvariantCulture,
                    $"The {called} ({refiner.Info.Root}) scales latents by {refiner.Info.Family.VaeScalingFactor} and this model by {Info.Family.VaeScalingFactor}: their latent spaces differ, so one cannot continue the other's latents."));
    }

    // The progress of one part of a hand-off, counted over both parts; the base's decoding/done reports are dropped.
    private static Progress? Shifted(IProgress<GenerationProgress>? progress, int offset, int total, bool final) =>
        progress is null ? null : new Progress(progress, offset, total, final);

    private sealed class Progress(IProgress<GenerationProgress> inner, int offset, int total, bool final) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value)
        {
            if (!final && value.Phase is GenerationPhase.Decoding or GenerationPhase.Done) return;
            if (final && value.Phase == GenerationPhase.Encoding) return;
            inner.Report(value with { Step = offset + value.Step, TotalSteps = total });
        }
    }
}
