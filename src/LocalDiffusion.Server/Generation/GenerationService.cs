using System.Diagnostics;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Metrics;
using LocalDiffusion.Server.Models;
using LocalDiffusion.Server.Queue;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Generation;

/// <summary>A finished generation, what it cost, and what the server warns about it (beside the engine's own warnings).</summary>
/// <param name="Result">The engine's result.</param>
/// <param name="Model">The model that ran it.</param>
/// <param name="QueueWait">Time spent waiting for a slot.</param>
/// <param name="Warnings">The server's own warnings (a size far above native).</param>
/// <param name="Interrupted">Stopped early by an interrupt (only with <c>finishOnInterrupt</c>: the images are the picture so far).</param>
internal sealed record GenerationOutcome(GenerationResult Result, ServedModel Model, TimeSpan QueueWait, IReadOnlyList<string> Warnings, bool Interrupted);

/// <summary>A served model that finishes the schedule from <see cref="SwitchAt"/> (the SDXL base → refiner hand-off).</summary>
internal sealed record RefinerChoice(ServedModel Model, float SwitchAt);

/// <summary>
/// Runs a generation for an HTTP request: through the queue (429 when full), as an <see cref="ActiveGeneration"/>
/// (so progress and interrupt see it), cancelled when the client disconnects, measured, and logged by the request log.
/// Every API (OpenAI, A1111) goes through here, so the queue and the limits hold for all of them.
/// </summary>
internal sealed class GenerationService(GenerationQueue queue, ActiveGenerations active, ServerMetrics metrics, SizeLimit sizes, CancellationToken stopping)
{
    /// <summary>The waiting and running jobs by id, for <c>/v1/queue</c>.</summary>
    public JobRegistry Jobs { get; } = new();

    /// <param name="context">The HTTP request (its abort token, log items and headers).</param>
    /// <param name="model">The model to run.</param>
    /// <param name="request">The engine request.</param>
    /// <param name="onProgress">Called on the generation's thread at every progress report.</param>
    /// <param name="refiner">A model that finishes the schedule.</param>
    /// <param name="sizeField">The front-end's name for the size, for the error when it is over the cap (size, or width/height).</param>
    /// <param name="finishOnInterrupt">An interrupt ends denoising and the picture so far is decoded and returned (A1111's
    /// Interrupt); otherwise it fails the request with <see cref="GenerationInterruptedException"/>.</param>
    public async Task<GenerationOutcome> GenerateAsync(HttpContext context, ServedModel model, GenerationRequest request,
        Action<GenerationProgress>? onProgress = null, RefinerChoice? refiner = null, string sizeField = "size", bool finishOnInterrupt = false)
    {
        var pipeline = model.Pipeline; // 503 while loading
        request = pipeline.WithDefaults(request);
        var refinerPipeline = refiner?.Model.Pipeline;
        var items = context.Items;
        items[RequestLog.Model] = model.Id;
        // Without a size, an init image's own size (rounded down to the model's multiple, as the engine does) or the native size.
        var multiple = pipeline.Info.SizeMultiple;
        var width = request.Width ?? (request.InitImage is { } init ? init.Width / multiple * multiple : pipeline.Info.NativeWidth);
        var height = request.Height ?? (request.InitImage is { } init2 ? init2.Height / multiple * multiple : pipeline.Info.NativeHeight);
        items[RequestLog.Size] = $"{width}x{height}";
        var warnings = sizes.Check(model.Id, pipeline.Info, width, height, sizeField);
        items[RequestLog.Steps] = request.Steps;
        var tags = new KeyValuePair<string, object?>("model", model.Id);

        var kind = request.InitImage is null && request.InitLatents is null ? "txt2img" : "img2img";
        using var job = Jobs.Add(JobId.Of(context), model.Id, kind);

        var waited = Stopwatch.StartNew();
        using var abandoned = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        // Only the wait sees the job's cancel: once running, a cancel interrupts the generation (Job.Started).
        using var waitEnds = CancellationTokenSource.CreateLinkedTokenSource(abandoned.Token, job.Cancelled);
        GenerationQueue.QueueSlot lease;
        var waitSpan = Telemetry.ServerTracing.Source.StartActivity("localdiffusion.queue_wait");
        waitSpan?.SetTag("localdiffusion.model", model.Id);
        waitSpan?.SetTag("localdiffusion.job", job.Id);
        try
        {
            // A hand-off runs two models in turn: never batched.
            lease = await queue.EnterAsync(waitEnds.Token, refinerPipeline is null ? new BatchCandidate(pipeline, request) : null, job.Id);
        }
        catch (QueueFullException)
        {
            metrics.Rejected.Add(1, tags);
            waitSpan?.SetStatus(ActivityStatusCode.Error, "queue full");
            items[RequestLog.Outcome] = "queue full";
            throw ApiException.QueueFull(queue.Capacity);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested)
        {
            throw ShuttingDown();
        }
        catch (OperationCanceledException) when (job.Cancelled.IsCancellationRequested && !abandoned.IsCancellationRequested)
        {
            items[RequestLog.Outcome] = "cancelled in the queue";
            throw new ApiException(409, $"The job '{job.Id}' was cancelled (DELETE /v1/queue/{job.Id}) before it started.", "invalid_request_error", null, "cancelled");
        }
        finally
        {
            // Ends here, so that the generation's spans are siblings of the wait under the request, not inside it.
            waitSpan?.Dispose();
        }
        using (lease)
        {
            var batch = lease.Batch;
            var queueWait = waited.Elapsed;
            items[RequestLog.QueueWait] = queueWait;
            metrics.QueueWaitSeconds.Record(queueWait.TotalSeconds, tags);
            ActiveGeneration generation;
            try
            {
                generation = new ActiveGeneration(job.Id, model.Id, request.StepCount, abandoned.Token, finishOnInterrupt && refinerPipeline is null) { Kind = kind };
            }
            catch
            {
                batch?.Withdraw();
                throw;
            }
            using var _ = generation;
            active.Add(generation);
            job.Started(generation);
            var outcome = "error";
            var clock = Stopwatch.StartNew();
            try
            {
                var progress = new InlineProgress(p =>
                {
                    generation.Report(p);
                    onProgress?.Invoke(p);
                });
                // Batched: one engine batch with the requests the queue let through with this one (it always joins, so they never wait for it).
                var result = refinerPipeline is not null
                    ? await pipeline.GenerateWithRefinerAsync(request, refinerPipeline, refiner!.SwitchAt, progress, generation.Token)
                    : batch is null
                    ? await pipeline.GenerateAsync(request with { FinishEarly = generation.FinishEarly }, progress, generation.Token)
                    : await batch.RunAsync(pipeline, new GenerationBatchItem(request with { FinishEarly = generation.FinishEarly }, progress, generation.Token));
                outcome = generation.Interrupted ? "interrupted" : "ok";
                metrics.BatchSize.Record(result.BatchSize, tags);
                if (!context.Response.HasStarted) context.Response.Headers[BatchSizeHeader] = result.BatchSize.ToString(System.Globalization.CultureInfo.InvariantCulture);
                metrics.Images.Add(result.Images.Count, tags);
                metrics.GenerationSeconds.Record(result.Elapsed.TotalSeconds, tags);
                if (result.UnetEvaluations > 0) metrics.StepSeconds.Record(result.Elapsed.TotalSeconds / result.UnetEvaluations, tags);
                return new GenerationOutcome(result, model, queueWait, warnings, generation.Interrupted);
            }
            catch (OperationCanceledException) when (generation.Interrupted && !context.RequestAborted.IsCancellationRequested)
            {
                outcome = "interrupted";
                throw new GenerationInterruptedException();
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested)
            {
                outcome = "cancelled";
                throw ShuttingDown();
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                outcome = "cancelled";
                throw;
            }
            catch (Exception e) when (LocalDiffusion.Errors.ErrorContract.KindOf(e) is LocalDiffusion.Errors.ErrorKind.InvalidRequest or LocalDiffusion.Errors.ErrorKind.ModelIncompatible)
            {
                outcome = "invalid_request"; // the engine refused the request (a 400): the client's error, not the server's
                throw;
            }
            finally
            {
                active.Remove(generation);
                items[RequestLog.GenerationTime] = clock.Elapsed;
                if (outcome != "ok") items[RequestLog.Outcome] = outcome;
                metrics.Generations.Add(1, tags, new KeyValuePair<string, object?>("outcome", outcome));
            }
        }
    }

    /// <summary>Response header with the number of requests denoised together with this one (1: alone).</summary>
    public const string BatchSizeHeader = "x-localdiffusion-batch-size";

    private static ApiException ShuttingDown() =>
        new(503, "The server is shutting down; try again (another replica, or this one once it is back).", "server_error", null, "shutting_down") { RetryAfterSeconds = 5 };

    /// <summary>Reports on the generation's own thread, in order (Progress&lt;T&gt; would post to the thread pool and reorder).</summary>
    private sealed class InlineProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}

/// <summary>The generation was stopped by <c>/sdapi/v1/interrupt</c>.</summary>
internal sealed class GenerationInterruptedException() : Exception("The generation was interrupted.");
