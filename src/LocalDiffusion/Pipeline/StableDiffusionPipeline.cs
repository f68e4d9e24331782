using LocalDiffusion.ControlNet;
using LocalDiffusion.Embeddings;
using LocalDiffusion.Families;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// Text-to-image, img2img and inpainting with any model family (<see cref="FamilyRegistry"/>: SD 1.x/2.x/XL and their
/// variants, SD 3, FLUX.1), in stages: prompt encoding → initial latents → denoising → decoding. This class is the
/// family-neutral orchestrator: what the stages feed the denoiser, how latents are made and scaled, and what a request
/// may ask of the model are the <see cref="FamilyModel"/>'s, decided once at load.
/// Sessions are created once and reused. <see cref="GenerateAsync"/> may be called from several threads at once:
/// each generation has its own scheduler, generator and buffers, and ONNX Runtime sessions run concurrently.
/// </summary>
public sealed partial class StableDiffusionPipeline : IDisposable
{
    /// <summary>The largest <see cref="ControlNetUnit.Scale"/> accepted.</summary>
    public const float MaxControlNetScale = 10f;

    private readonly FamilyModel _model;
    private readonly ConditioningCache? _conditioningCache;
    private readonly LoraSwitch _loras;
    private readonly ControlNetSet _controlNets;
    private readonly RunPreparation _preparation;
    private readonly GenerationStages _stages;
    private readonly BatchRunner _batches;
    private readonly CancellationTokenSource _disposing = new();
    private readonly object _gate = new();
    private int _active;
    [ThreadStatic] private static int _generationsOnThisThread;
    private bool _disposed;

    private StableDiffusionPipeline(FamilyModel model, SessionFactory sessions, PipelineOptions options)
    {
        _model = model;
        _conditioningCache = options.PromptCacheEntries > 0 ? new ConditioningCache(options.PromptCacheEntries) : null;
        _loras = new LoraSwitch(model, options);
        _controlNets = new ControlNetSet(model, sessions, options);
        _preparation = new RunPreparation(model, options.Schedulers ?? SchedulerRegistry.Default, options, _loras, _controlNets);
        _stages = new GenerationStages(model, _preparation, _loras, _controlNets, _conditioningCache, _disposing.Token);
        _batches = new BatchRunner(model, _preparation, _stages, _loras, StartInBackground, _disposing.Token);
    }

    /// <summary>What was detected: components, dtypes, shapes, scheduler, provider, native size.</summary>
    public ModelInfo Info => _model.Info;

    /// <summary>
    /// Generates images. Cancelling stops between UNet evaluations and interrupts a running ONNX Runtime call.
    /// Bad requests throw <see cref="ArgumentException"/> naming the field before any work is done.
    /// </summary>
    public Task<GenerationResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var run = Prepare(request);
        return RunAsGeneration(() => _stages.Generate(run, progress, null, decode: true, cancellationToken).Result);
    }

    /// <summary>
    /// The request with what it leaves unset taken from this model's family (<see cref="ModelFamily.DefaultSteps"/>,
    /// <see cref="ModelFamily.DefaultGuidanceScale"/>): Turbo's one unguided step, LCM's 4 steps at 8.5, SD's 20 at 7.5,
    /// FLUX.1-schnell's 4 unguided steps. What a generation of <paramref name="request"/> runs; front-ends use it to
    /// report the values.
    /// </summary>
    public GenerationRequest WithDefaults(GenerationRequest request) => _preparation.WithDefaults(request);

    /// <summary>
    /// Runs several requests together: requests that <see cref="CanBatch">can be batched</see> share one UNet call per
    /// step over all their rows (each request's [negative×n, prompt×n] rows with guidance, one request after another);
    /// prompt encoding, guidance, scheduler steps and decoding stay per request. Each request keeps its own seed and
    /// generator, scheduler instance (stochastic schedulers draw from its own generator), guidance scale, progress and
    /// cancellation, so its images and final latents are those <see cref="GenerateAsync"/> gives for it alone.
    /// Requests that cannot be batched with the others run separately (concurrently, as separate
    /// <see cref="GenerateAsync"/> calls would); so do requests whose prompts encode to different lengths (prompts over
    /// 75 tokens on a UNet that takes longer sequences).
    /// </summary>
    /// <returns>
    /// One task per item, in order. A bad request's task fails at once with the <see cref="ArgumentException"/>
    /// <see cref="GenerateAsync"/> would throw; a cancelled item's task ends with <see cref="OperationCanceledException"/>
    /// (at the next step, or at once in its own encoder/decoder calls) while the others go on; when every member of a
    /// batch is cancelled, the running ONNX Runtime call is terminated. A NaN in one request's rows fails only that request.
    /// </returns>
    public IReadOnlyList<Task<GenerationResult>> GenerateBatchAsync(IReadOnlyList<GenerationBatchItem> items)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _batches.GenerateBatchAsync(items);
    }

    /// <summary>
    /// Whether <see cref="GenerateBatchAsync"/> denoises the two requests in one batch: both valid, the same output size,
    /// the same timestep sequence (the same scheduler kind and step count; the UNet takes one timestep per call), the same
    /// classifier-free guidance decision (both guided or both not, whatever the scales), and text-to-image over the whole
    /// schedule (img2img, inpainting, the SDXL base → refiner hand-off and SeedPerImage batches run alone). Prompts, negative prompts, seeds, guidance scales, ImageCount, eta and previews may differ.
    /// </summary>
    public bool CanBatch(GenerationRequest first, GenerationRequest second) => _batches.CanBatch(first, second);

    /// <summary>
    /// The ControlNet in <paramref name="path"/> (a folder holding model.onnx, or the file), loaded on this pipeline's device
    /// the first time and kept until the pipeline is disposed; requests naming <see cref="ControlNetUnit.ModelPath"/> use it.
    /// </summary>
    /// <exception cref="ModelLoadException">The file is missing, corrupt or not a ControlNet.</exception>
    public ControlNetModel LoadControlNet(string path)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _controlNets.Load(path);
    }

    /// <summary>The LoRA set now merged into the weights (empty: none).</summary>
    public IReadOnlyList<LoraAdapter> ActiveLoras => _loras.ActiveLoras;

    /// <summary>What the weights now come from: the LoRA set and, after a request that used them, the embeddings ("" for the model's own).</summary>
    internal string ActiveAdapterIdentity => _loras.ActiveIdentity;

    /// <summary>The textual-inversion embeddings prompts can use, by name (empty: none loaded).</summary>
    public IReadOnlyList<TextualInversion> Embeddings => _model.Embeddings?.Loaded ?? [];

    /// <summary>Files of <see cref="PipelineOptions.EmbeddingsDirectory"/> that were not loaded, and why (A1111's "skipped").</summary>
    public IReadOnlyList<SkippedEmbedding> SkippedEmbeddings => _model.Embeddings?.Skipped ?? [];

    /// <summary>The family adapter that runs this model (tests read its conditioning directly).</summary>
    internal Families.FamilyModel Family => _model;

    internal IReadOnlyList<string> OpenSessions() => [.. _model.Sessions.Where(c => c.IsLoaded).Select(c => c.Name)];

    // Whether each component's last opened session came from the optimised-model cache (for tests: a LoRA's session).
    internal ModelCacheStatus LastOpenCacheStatus(string component) => _model.Sessions.First(c => c.Name == component).LastOpenCacheStatus;

    // A request checked and ready to run: everything that can be refused is refused here, before any work.
    private RunPreparation.PreparedRun Prepare(GenerationRequest request)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _preparation.Prepare(request);
    }

    // Runs work in the background as one of this pipeline's generations (Dispose waits for it).
    private Task<T> RunAsGeneration<T>(Func<T> work)
    {
        Enter();
        return Task.Run(() =>
        {
            _generationsOnThisThread++;
            try
            {
                return work();
            }
            finally
            {
                _generationsOnThisThread--;
                Exit();
            }
        }, CancellationToken.None);
    }

    // A batch group's run: its results go to its members' own tasks.
    private void StartInBackground(Action work) => _ = RunAsGeneration(() =>
    {
        work();
        return true;
    });

    /// <summary>Prompt encodings served from <see cref="PipelineOptions.PromptCacheEntries"/>'s cache (for tests).</summary>
    internal long PromptCacheHits => _conditioningCache?.Hits ?? 0;

    private void Enter()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _active++;
        }
    }

    private void Exit()
    {
        lock (_gate)
        {
            _active--;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Cancels generations in flight, waits for them to stop, and releases the native sessions.</summary>
    public void Dispose()
    {
        // Waiting for the generation this thread is running (e.g. from a progress callback) would never end.
        if (_generationsOnThisThread > 0)
            throw new InvalidOperationException("Dispose was called from inside a generation (a progress callback?); dispose the pipeline after GenerateAsync completes.");
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _disposing.Cancel();
            while (_active > 0) Monitor.Wait(_gate);
        }
        _controlNets.Dispose();
        _model.Dispose();
        _disposing.Dispose();
    }
}
