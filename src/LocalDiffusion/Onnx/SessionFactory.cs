using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Onnx;

/// <summary>
/// Creates the inference sessions of one pipeline on one execution provider. With <c>auto</c> it tries the GPU
/// providers this runtime build has, in order, and settles on the first that starts, else the CPU.
/// </summary>
internal sealed class SessionFactory
{
    private static readonly ExecutionProviderKind[] AutoOrder =
        [ExecutionProviderKind.Cuda, ExecutionProviderKind.DirectML, ExecutionProviderKind.CoreML];

    private readonly int? _intraOpThreads;
    private readonly int? _interOpThreads;
    private readonly List<string> _notes = [];
    private List<ExecutionDevice> _candidates;

    static SessionFactory() => OrtErrorCodes.Complete();

    public SessionFactory(ExecutionDevice requested, int? intraOpThreads, int? interOpThreads)
    {
        Requested = requested;
        _intraOpThreads = intraOpThreads;
        _interOpThreads = interOpThreads;
        var available = AvailableProviders();
        if (requested.Kind == ExecutionProviderKind.Auto)
        {
            _candidates = AutoOrder.Select(k => new ExecutionDevice(k, requested.DeviceId))
                .Where(d => available.Contains(d.ProviderName)).ToList();
            _candidates.Add(new ExecutionDevice(ExecutionProviderKind.Cpu));
        }
        else
        {
            if (!available.Contains(requested.ProviderName))
                throw new ExecutionProviderUnavailableException(requested,
                    $"this ONNX Runtime build has only {string.Join(", ", available)}");
            _candidates = [requested];
        }
    }

    /// <summary>What the user asked for.</summary>
    public ExecutionDevice Requested { get; }

    /// <summary>The provider the sessions run on (the first candidate until a session has been created).</summary>
    public ExecutionDevice Active => _candidates[0];

    /// <summary>Why providers tried by <c>auto</c> were passed over.</summary>
    public IReadOnlyList<string> Notes => _notes;

    /// <summary>Where optimised graphs are stored and found; null: no cache.</summary>
    public ModelCache? Cache { get; init; }

    /// <summary>Session tuning and provider options (threads come from the constructor).</summary>
    public PipelineOptions Options { get; init; } = new();

    /// <summary>Whether the provider is settled, so that sessions may be created in parallel.</summary>
    public bool IsSettled => _candidates.Count == 1;

    /// <summary>Provider names compiled into the loaded ONNX Runtime.</summary>
    public static IReadOnlyList<string> AvailableProviders() => OrtEnv.Instance().GetAvailableProviders();

    /// <summary>Opens <paramref name="modelPath"/> on the active provider (falling back under <c>auto</c>).</summary>
    public InferenceSession Create(string modelPath) => Create(modelPath, out _);

    /// <inheritdoc cref="Create(string)"/>
    public InferenceSession Create(string modelPath, out ModelCacheStatus cacheStatus) => Create(modelPath, false, null, out cacheStatus, out _);

    /// <summary>
    /// Opens <paramref name="modelPath"/>; with <paramref name="fuseAttention"/> (and <see cref="PipelineOptions.FuseAttention"/>,
    /// on the CPU or CUDA) its written-out attention is fused first (<see cref="Rewriting.AttentionFusion"/>), and
    /// <paramref name="fusedAttentionNodes"/> says how many fused attention nodes the opened graph has. With
    /// <paramref name="overrides"/> (LoRA-merged weights) those initializers replace the model's; such a session is
    /// never stored in the optimised-model cache (see <see cref="OpenWithOverrides"/>).
    /// </summary>
    public InferenceSession Create(string modelPath, bool fuseAttention, Adapters.InitializerOverrides? overrides, out ModelCacheStatus cacheStatus, out int fusedAttentionNodes)
    {
        while (true)
        {
            var device = _candidates[0];
            try
            {
                var fuse = fuseAttention && Options.FuseAttention && device.Kind is ExecutionProviderKind.Cpu or ExecutionProviderKind.Cuda;
                var session = overrides is null
                    ? Open(device, modelPath, fuse, out cacheStatus, out fusedAttentionNodes)
                    : OpenWithOverrides(device, modelPath, fuse, overrides, out cacheStatus, out fusedAttentionNodes);
                if (device.Kind == ExecutionProviderKind.Cpu && (Options.Cuda is not null || Options.TensorRT is not null))
                    AddNote(UnusedGpuOptions);
                // A fallback now would put the components on different devices: settle here.
                _candidates = [device];
                return session;
            }
            catch (Exception e) when (device.Kind != ExecutionProviderKind.Cpu && IsProviderFailure(e))
            {
                var reason = e is EntryPointNotFoundException
                    ? "this ONNX Runtime build does not contain it"
                    : $"it could not start ({FirstLine(e.Message)})";
                if (_candidates.Count == 1)
                    throw new ExecutionProviderUnavailableException(device, reason, e);
                AddNote($"{device}: {reason}");
                _candidates.RemoveAt(0);
            }
        }
    }

    // The optimised-model cache serves the CPU provider: GPU providers compile or place nodes in ways ONNX Runtime
    // cannot always write back as a plain ONNX file (TensorRT, DirectML, CoreML), and CUDA is not measured here.
    private InferenceSession Open(ExecutionDevice device, string modelPath, bool fuse, out ModelCacheStatus cacheStatus, out int fusedNodes)
    {
        cacheStatus = ModelCacheStatus.NotUsed;
        fusedNodes = 0;
        if (Cache is null || device.Kind != ExecutionProviderKind.Cpu)
            return OpenSource(device, modelPath, fuse, null, ref fusedNodes);

        // Entries made with and without the rewrite are different graphs, kept apart by the key.
        var slot = Cache.SlotFor(modelPath, device, fuse ? Rewriting.AttentionFusion.Version : null);
        var cached = slot.Find(out var damage);
        if (damage is not null)
            AddNote($"{slot.Component}: the cached optimised graph ({slot.Folder}) was rebuilt from {modelPath}: {damage}");
        if (cached is not null)
        {
            try
            {
                // Already optimised at the "all" level: optimising again would only spend the time saved.
                var session = OpenPlain(device, cached, GraphOptimizationLevel.ORT_DISABLE_ALL);
                slot.Touch();
                cacheStatus = ModelCacheStatus.Hit;
                fusedNodes = OnnxFileScan.TryRead(cached)?.FusedAttentionNodes ?? 0;
                return session;
            }
            catch (OnnxRuntimeException e)
            {
                slot.Discard(); // its files check out but ONNX Runtime refuses it: rebuilt below
                AddNote($"{slot.Component}: the cached optimised graph ({slot.Folder}) did not load and was rebuilt from {modelPath} ({FirstLine(e.Message)})");
            }
        }

        if (slot.BeginStore() is not { } staging)
            return OpenSource(device, modelPath, fuse, null, ref fusedNodes);
        InferenceSession? stored = null;
        OnnxRuntimeException? storing = null;
        try
        {
            stored = OpenSource(device, modelPath, fuse, staging, ref fusedNodes);
        }
        catch (OnnxRuntimeException e)
        {
            // Writing the optimised graph failed (a full disk), or the model is bad: the plain load below says which.
            storing = e;
        }
        if (stored is null)
        {
            ModelCache.Slot.Abandon(staging);
            var session = OpenSource(device, modelPath, fuse, null, ref fusedNodes);
            AddNote($"{slot.Component}: the optimised graph was not stored in the cache ({FirstLine(storing!.Message)}); the next start optimises it again");
            return session;
        }
        cacheStatus = slot.Commit(staging, device) ? ModelCacheStatus.Stored : ModelCacheStatus.NotUsed;
        return stored;
    }

    // ONNX Runtime's "all" level reorders Conv weights for its NCHWc kernels from the model's own data, ignoring
    // AddInitializer (measured with 1.31: a replaced Conv weight left the output unchanged, a replaced MatMul or Gemm
    // weight changed it); at the "extended" level the replacement is used. Sessions with merged Conv weights optimised
    // from the source lose only that layout rewrite; those opened from the cache keep it (the merged filters are handed
    // over already reordered, see OpenWithOverrides).
    // Weights fed through a Cast (float16 exports) are constant-folded from the file's data at every level above "disabled".
    private static GraphOptimizationLevel LevelFor(Adapters.InitializerOverrides? overrides) => overrides?.Level ?? GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>
    /// Opens <paramref name="modelPath"/> with LoRA-merged weights. The cache holds the model's own optimised graph, never
    /// a merged one (its key does not include LoRAs, and storing each LoRA set would copy the model once per set): a cached
    /// graph is used when it still has every replaced initializer under its name and shape, or (Conv weights) holds it
    /// reordered in a layout confirmed from its data (<see cref="Adapters.CachedConvWeights"/>), and no Cast-fed weight is
    /// replaced (the cached graph has those folded); else the source is optimised again with the replacements and nothing
    /// is stored.
    /// </summary>
    private InferenceSession OpenWithOverrides(ExecutionDevice device, string modelPath, bool fuse, Adapters.InitializerOverrides overrides,
        out ModelCacheStatus cacheStatus, out int fusedNodes)
    {
        cacheStatus = ModelCacheStatus.NotUsed;
        fusedNodes = 0;
        if (Cache is not null && device.Kind == ExecutionProviderKind.Cpu && overrides.Level != GraphOptimizationLevel.ORT_DISABLE_ALL)
        {
            var slot = Cache.SlotFor(modelPath, device, fuse ? Rewriting.AttentionFusion.Version : null);
            var cached = slot.Find(out _);
            var probe = Adapters.LoraWeightsRewrite.Current;
            if (probe is not null && probe.Has(modelPath, overrides.Identity))
            {
                // The set was not merged again (LoraSwitch): without the rewrite's entry there are no weights to open with.
                if (cached is null) throw new InvalidOperationException($"{modelPath}: the cache entry the LoRA rewrite was made from is gone");
                var rewritten = probe.PathFor(modelPath, overrides.Identity);
                cacheStatus = ModelCacheStatus.Hit;
                fusedNodes = OnnxFileScan.TryRead(cached)?.FusedAttentionNodes ?? 0;
                return probe.Timed(modelPath, () => OpenPlain(device, rewritten, GraphOptimizationLevel.ORT_DISABLE_ALL));
            }
            Adapters.CachedConvForm? form = null;
            if (cached is not null && overrides.HasConvWeights)
                form = overrides.CachedFormFor(Adapters.CachedConvWeights.KeyFor(cached),
                    () => Adapters.CachedConvWeights.TryMap(modelPath, cached, overrides, out _));
            if (cached is not null && (overrides.HasConvWeights ? form is not null : Adapters.CachedGraphCheck.HasAll(cached, overrides)))
            {
                var rewritten = probe?.Rewrite == true ? probe.PathFor(modelPath, cached, overrides, form) : null;
                var session = probe is null ? OpenPlain(device, cached, GraphOptimizationLevel.ORT_DISABLE_ALL, overrides, form)
                    : rewritten is null ? probe.Timed(modelPath, () => OpenPlain(device, cached, GraphOptimizationLevel.ORT_DISABLE_ALL, overrides, form))
                    : probe.Timed(modelPath, () => OpenPlain(device, rewritten, GraphOptimizationLevel.ORT_DISABLE_ALL));
                slot.Touch();
                cacheStatus = ModelCacheStatus.Hit;
                fusedNodes = OnnxFileScan.TryRead(cached)?.FusedAttentionNodes ?? 0;
                return session;
            }
        }
        return OpenSource(device, modelPath, fuse, null, ref fusedNodes, overrides);
    }

    // The source model, optimised at the "all" level, attention fused first when asked (and when any block checks
    // out); written into the cache's staging folder when one is given.
    private InferenceSession OpenSource(ExecutionDevice device, string modelPath, bool fuse, string? staging, ref int fusedNodes,
        Adapters.InitializerOverrides? overrides = null)
    {
        fusedNodes = OnnxFileScan.TryRead(modelPath)?.FusedAttentionNodes ?? 0;
        if (fuse && TryOpenFused(device, modelPath, staging, overrides) is { } fused)
        {
            fusedNodes += fused.Blocks;
            return fused.Session;
        }
        using var options = CreateOptions(device, LevelFor(overrides), modelPath, overrides);
        if (staging is not null) ModelCache.WriteOptimisedTo(options, staging);
        return new InferenceSession(modelPath, options);
    }

    // The rewrite only makes a model faster: when it fails, or ONNX Runtime refuses its graph, the model opens as
    // exported and the notes say why.
    private (InferenceSession Session, int Blocks)? TryOpenFused(ExecutionDevice device, string modelPath, string? staging, Adapters.InitializerOverrides? overrides)
    {
        var component = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(modelPath)));
        Rewriting.AttentionFusion.Result? fused;
        try
        {
            fused = Rewriting.AttentionFusion.TryFuse(modelPath);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            AddNote($"{component}: attention left as exported, the rewrite failed ({e.GetType().Name}: {FirstLine(e.Message)})");
            return null;
        }
        if (fused is null) return null;
        try
        {
            using var options = CreateOptions(device, LevelFor(overrides), modelPath, overrides);
            if (staging is not null) ModelCache.WriteOptimisedTo(options, staging);
            // The rewritten graph comes from memory; its weights stay in the files beside the source model.
            options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", Path.GetDirectoryName(Path.GetFullPath(modelPath))!);
            return (new InferenceSession(fused.Model, options), fused.Fused);
        }
        // While storing, the failure may be the cache's write (a full disk), not the graph: Open retries without storing,
        // so that neither a false note nor the unfused graph under the fused graph's key comes of it.
        catch (OnnxRuntimeException e) when (staging is null)
        {
            AddNote($"{component}: attention left as exported, ONNX Runtime refused the fused graph ({FirstLine(e.Message)})");
            return null;
        }
        finally
        {
            // The file read and the rewritten copy (the VAE's embedded weights: hundreds of MB) are garbage now; without a
            // collection they stay resident beside the weights until the next one, which in a generation may be never.
            fused = null;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
        }
    }

    // Components load in parallel, and a note (a provider passed over, a rewrite left out) may come from each: once.
    private void AddNote(string note)
    {
        lock (_notes)
            if (!_notes.Contains(note)) _notes.Add(note);
    }

    private InferenceSession OpenPlain(ExecutionDevice device, string modelPath, GraphOptimizationLevel level, Adapters.InitializerOverrides? overrides = null,
        Adapters.CachedConvForm? form = null)
    {
        using var options = CreateOptions(device, level, modelPath, overrides, form);
        return new InferenceSession(modelPath, options);
    }

    private const string UnusedGpuOptions = "the CUDA/TensorRT options were not used: the sessions run on the CPU";

    private SessionOptions CreateOptions(ExecutionDevice device, GraphOptimizationLevel level, string modelPath, Adapters.InitializerOverrides? overrides = null,
        Adapters.CachedConvForm? form = null)
    {
        var options = new SessionOptions { GraphOptimizationLevel = level };
        overrides?.ApplyTo(options, form);
        if (_intraOpThreads is { } intra) options.IntraOpNumThreads = intra;
        if (_interOpThreads is { } inter) options.InterOpNumThreads = inter;
        try
        {
            SessionTuning.Apply(options, Options, device);
            switch (device.Kind)
            {
                case ExecutionProviderKind.Cuda:
                    AppendCuda(options, device);
                    break;
                case ExecutionProviderKind.TensorRT:
                    AppendTensorRT(options, device, modelPath);
                    AppendCuda(options, device);
                    break;
                case ExecutionProviderKind.DirectML:
                    // DirectML needs sequential execution and no memory pattern (ONNX Runtime's documented requirement).
                    options.EnableMemoryPattern = false;
                    options.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
                    options.AppendExecutionProvider_DML(device.DeviceId);
                    break;
                case ExecutionProviderKind.CoreML:
                    options.AppendExecutionProvider_CoreML(CoreMLFlags.COREML_FLAG_USE_NONE);
                    break;
            }
            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    private void AppendCuda(SessionOptions options, ExecutionDevice device)
    {
        if (Options.Cuda is null)
        {
            options.AppendExecutionProvider_CUDA(device.DeviceId);
            return;
        }
        using var cuda = new OrtCUDAProviderOptions();
        cuda.UpdateOptions(new Dictionary<string, string>(Options.Cuda.ToProviderOptions(device.DeviceId)));
        options.AppendExecutionProvider_CUDA(cuda);
    }

    private void AppendTensorRT(SessionOptions options, ExecutionDevice device, string modelPath)
    {
        if (Options.TensorRT is null)
        {
            options.AppendExecutionProvider_Tensorrt(device.DeviceId);
            return;
        }
        // Engines are per component and per model: one folder for each model file, next to the optimised-model cache.
        var component = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(modelPath))) ?? "model";
        var folder = ModelCache.TensorRtFolder(Options.CacheDirectory ?? ModelCache.DefaultDirectory, modelPath, device);
        using var trt = new OrtTensorRTProviderOptions();
        trt.UpdateOptions(new Dictionary<string, string>(Options.TensorRT.ToProviderOptions(device.DeviceId, component, folder)));
        options.AppendExecutionProvider_Tensorrt(trt);
    }

    // The CPU package lacks the GPU entry points (EntryPointNotFoundException); a GPU package without its
    // CUDA/cuDNN libraries fails inside ONNX Runtime. Model errors must not be mistaken for these.
    private static bool IsProviderFailure(Exception e) =>
        e is EntryPointNotFoundException or DllNotFoundException
        || (e is OnnxRuntimeException ort && ort.Message.Contains("Provider", StringComparison.OrdinalIgnoreCase)
            && !ort.Message.Contains("Load model", StringComparison.OrdinalIgnoreCase));

    private static string FirstLine(string s)
    {
        var i = s.IndexOf('\n');
        return (i < 0 ? s : s[..i]).Trim();
    }
}
