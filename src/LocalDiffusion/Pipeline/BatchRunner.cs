using LocalDiffusion.Model;
using LocalDiffusion.Families;
using System.Diagnostics;
using LocalDiffusion.Schedulers;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// Dynamic batching: several compatible requests denoised together, one denoiser call per step over all their rows, each
/// request getting exactly the result it gets alone. Kept apart from the single-request code, which it reuses stage by
/// stage; <paramref name="start"/> runs a group in the background as one of the pipeline's generations.
/// </summary>
internal sealed class BatchRunner(FamilyModel model, RunPreparation preparation, GenerationStages stages, LoraSwitch loras,
    Action<Action> start, CancellationToken disposing)
{
    private ModelInfo Info => model.Info;

    /// <summary>See <see cref="StableDiffusionPipeline.GenerateBatchAsync"/>.</summary>
    public IReadOnlyList<Task<GenerationResult>> GenerateBatchAsync(IReadOnlyList<GenerationBatchItem> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var results = new TaskCompletionSource<GenerationResult>[items.Count];
        var groups = new List<List<BatchEntry>>();
        for (var i = 0; i < items.Count; i++)
        {
            results[i] = new TaskCompletionSource<GenerationResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            var item = items[i] ?? throw new ArgumentNullException($"{nameof(items)}[{i}]");
            ArgumentNullException.ThrowIfNull(item.Request, $"{nameof(items)}[{i}].{nameof(item.Request)}");
            BatchEntry entry;
            try
            {
                var prepared = preparation.Prepare(item.Request);
                entry = new BatchEntry(item, prepared.Request, prepared.Scheduler, prepared.LatentH, prepared.LatentW, results[i]);
            }
            catch (ArgumentException e)
            {
                results[i].SetException(e);
                continue;
            }
            (groups.Find(g => Compatible(g[0], entry)) ?? Add(groups)).Add(entry);
        }
        foreach (var group in groups) start(() => RunBatch(group));
        return results.Select(r => r.Task).ToArray();

        static List<BatchEntry> Add(List<List<BatchEntry>> groups)
        {
            groups.Add([]);
            return groups[^1];
        }
    }

    /// <summary>See <see cref="StableDiffusionPipeline.CanBatch"/>.</summary>
    public bool CanBatch(GenerationRequest first, GenerationRequest second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        try
        {
            var (a, b) = (preparation.Prepare(first), preparation.Prepare(second));
            return Compatible(new BatchEntry(null!, a.Request, a.Scheduler, a.LatentH, a.LatentW, null!),
                new BatchEntry(null!, b.Request, b.Scheduler, b.LatentH, b.LatentW, null!));
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private bool Compatible(BatchEntry a, BatchEntry b) =>
        model.BatchesExactly
        && a.LatentH == b.LatentH && a.LatentW == b.LatentW
        && loras.Identity(a.Request) == loras.Identity(b.Request)
        && a.Request.ControlNets is not { Count: > 0 } && b.Request.ControlNets is not { Count: > 0 } // their own residuals: alone
        && StartsFromNoise(a.Request) && StartsFromNoise(b.Request)
        && Info.Family.UsesClassifierFreeGuidance(a.Request.Guidance) == Info.Family.UsesClassifierFreeGuidance(b.Request.Guidance)
        // A guidance the denoiser takes as one input (FLUX.1-dev's) must be the same for the whole batch.
        && (Info.Family.Guidance != Model.GuidanceMode.Embedded || Info.Family.GuidanceEmbeddingWidth is not null || a.Request.Guidance == b.Request.Guidance)
        && a.Scheduler.Scheduler.Timesteps.SequenceEqual(b.Scheduler.Scheduler.Timesteps);

    // Text-to-image over the whole schedule: img2img, inpainting and the SDXL base → refiner hand-off (own begin/end
    // indices and start latents) run alone.
    // A SeedPerImage batch is already one batch of one-image runs of its own.
    private static bool StartsFromNoise(GenerationRequest r) =>
        r.InitImage is null && r.InitLatents is null && r.DenoisingStart is null && r.DenoisingEnd is null && !(r.SeedPerImage && r.ImageCount > 1);

    // Runs one compatible group on this thread: each request's prompt encoding and initial latents, the shared denoising
    // (split by conditioning length), then each request's decoding; every request's task is completed as soon as it can be.
    private void RunBatch(List<BatchEntry> group)
    {
        // One span for the engine batch, under the activity of whoever started it (the members share its stages).
        using var activity = LocalDiffusionTelemetry.StartGenerate(Info, group[0].Request, group[0].LatentW * Vae.VaeDecoder.Factor, group[0].LatentH * Vae.VaeDecoder.Factor, group.Count);
        var owned = new List<IDisposable>();
        try
        {
            owned.Add(loras.Use(group[0].Request));
            var prepared = new List<(BatchEntry Entry, GenerationRun Run)>();
            // Every request encodes its prompts before the shared denoising; the encoders stay open until all have.
            using (model.UseConditioner())
            {
                foreach (var entry in group)
                {
                    var linked = CancellationTokenSource.CreateLinkedTokenSource(entry.Item.CancellationToken, disposing);
                    var runOptions = new RunOptions();
                    var token = linked.Token;
                    owned.Add(linked);
                    owned.Add(runOptions);
                    owned.Add(token.Register(() => runOptions.Terminate = true));
                    try
                    {
                        token.ThrowIfCancellationRequested();
                        prepared.Add((entry, stages.Begin(entry.Request, entry.Scheduler, entry.LatentH, entry.LatentW, entry.Item.Progress, runOptions, Stopwatch.StartNew(), null, token)));
                    }
                    catch (Exception e)
                    {
                        Fail(entry, e, token);
                    }
                }
            }
            foreach (var part in prepared.GroupBy(p => p.Run.Inputs.SequenceLength))
                DenoiseAndFinish(part.ToList());
        }
        catch (Exception e)
        {
            // A bug outside any one request: nobody may wait forever.
            foreach (var entry in group) entry.Result.TrySetException(e);
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }
    }

    private void DenoiseAndFinish(List<(BatchEntry Entry, GenerationRun Run)> batch)
    {
        using var unetRunOptions = new RunOptions();
        // The shared UNet call is terminated only when no member needs it any more.
        var needed = batch.Count;
        var left = new int[batch.Count];
        void Leave(int index)
        {
            if (Interlocked.Exchange(ref left[index], 1) == 0 && Interlocked.Decrement(ref needed) == 0) unetRunOptions.Terminate = true;
        }
        var registrations = new List<CancellationTokenRegistration>(batch.Count);
        try
        {
            for (var i = 0; i < batch.Count; i++)
            {
                var index = i;
                registrations.Add(batch[i].Run.Token.Register(() => Leave(index)));
            }
            var runs = batch.Select(b => b.Run).ToList();
            try
            {
                stages.Denoise(runs, unetRunOptions, run =>
                {
                    var index = runs.IndexOf(run);
                    Fail(batch[index].Entry, run.Member!.Error!.SourceException, run.Token);
                    Leave(index);
                });
            }
            catch (Exception e)
            {
                // The UNet call itself failed (or was terminated): every member still in the loop ends with it.
                foreach (var (entry, run) in batch)
                    if (run.Member?.Active != false) Fail(entry, e, run.Token);
                return;
            }
            using var vae = model.Decoding.Use();
            foreach (var (entry, run) in batch)
            {
                if (run.Member!.Error is not null) continue;
                try
                {
                    entry.Result.TrySetResult(stages.Finish(run, decode: true));
                }
                catch (Exception e)
                {
                    Fail(entry, e, run.Token);
                }
            }
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
        }
    }

    // Ends a request's task: cancelled when its own token (or the pipeline's disposal) stopped it, else with the error.
    private static void Fail(BatchEntry entry, Exception error, CancellationToken token)
    {
        if (token.IsCancellationRequested && error is OperationCanceledException or OnnxRuntimeException)
            entry.Result.TrySetCanceled(token);
        else
            entry.Result.TrySetException(error);
    }

    private sealed record BatchEntry(GenerationBatchItem Item, GenerationRequest Request, (IScheduler Scheduler, string Name) Scheduler,
        int LatentH, int LatentW, TaskCompletionSource<GenerationResult> Result);
}
