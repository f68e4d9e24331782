using System.Globalization;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Onnx;

/// <summary>
/// One ONNX model of the pipeline (text encoder, UNet, VAE): its session and declared inputs/outputs. With
/// <see cref="ReleaseWhenIdle"/> the session is released when its last user returns it (<see cref="Use"/>) and opened
/// again by the next, so a generation holds only the stage it is in (<see cref="PipelineOptions.LowMemory"/>).
/// </summary>
internal sealed class OnnxComponent : IDisposable
{
    private const string LfsPointerPrefix = "version https://git-lfs";

    private readonly SessionFactory _sessions;
    private readonly Lock _gate = new();
    private InferenceSession? _session;
    private Adapters.InitializerOverrides? _overrides;
    private int _users;
    private bool _disposed;

    private OnnxComponent(string name, string path, InferenceSession session, OnnxFileScan? scan, ModelCacheStatus cacheStatus, SessionFactory sessions,
        int fusedAttentionNodes)
    {
        FusedAttentionNodes = fusedAttentionNodes;
        CacheStatus = cacheStatus;
        LastOpenCacheStatus = cacheStatus;
        Name = name;
        Scan = scan;
        FilePath = path;
        _session = session;
        _sessions = sessions;
        Inputs = session.InputMetadata.ToDictionary(kv => kv.Key, kv => TensorSpec.FromMetadata(kv.Key, kv.Value));
        Outputs = session.OutputMetadata.ToDictionary(kv => kv.Key, kv => TensorSpec.FromMetadata(kv.Key, kv.Value));
    }

    /// <summary>Component name as in the model folder, e.g. <c>unet</c>.</summary>
    public string Name { get; }

    /// <summary>The model.onnx path.</summary>
    public string FilePath { get; }

    /// <summary>The factory that opens its sessions: a component of the same model opened later (on first use) takes it too.</summary>
    public SessionFactory Sessions => _sessions;

    /// <summary>Whether the session is released whenever no stage is using it (set after load; see <see cref="Use"/>).</summary>
    public bool ReleaseWhenIdle { get; set; }

    /// <summary>Whether a session is open now (false only between stages under <see cref="ReleaseWhenIdle"/>).</summary>
    public bool IsLoaded
    {
        get
        {
            lock (_gate) return _session is not null;
        }
    }

    /// <summary>What was read from the file's protobuf before loading (null when it could not be scanned).</summary>
    public OnnxFileScan? Scan { get; }

    /// <summary>
    /// Fused attention nodes (com.microsoft MultiHeadAttention/Attention) in the graph the session runs: the file's own,
    /// and those the engine fused when opening it (<see cref="PipelineOptions.FuseAttention"/>).
    /// </summary>
    public int FusedAttentionNodes { get; }

    /// <summary>Whether the session came from the optimised-model cache.</summary>
    public ModelCacheStatus CacheStatus { get; }

    /// <summary>
    /// Whether the session opened last (at load, or again with LoRA-merged weights or after a low-memory release) came from
    /// the optimised-model cache: <see cref="ModelCacheStatus.Hit"/>, or <see cref="ModelCacheStatus.NotUsed"/> where the
    /// source was optimised again.
    /// </summary>
    public ModelCacheStatus LastOpenCacheStatus { get; private set; }

    public IReadOnlyDictionary<string, TensorSpec> Inputs { get; }

    public IReadOnlyDictionary<string, TensorSpec> Outputs { get; }

    /// <summary>Opens <paramref name="path"/>, turning every way it can be wrong into an error that names the file.</summary>
    public static OnnxComponent Load(string name, string path, SessionFactory sessions, bool releaseWhenIdle = false)
    {
        CheckModelFile(path);
        var scan = OnnxFileScan.TryRead(path);
        if (scan is not null) CheckExternalData(path, scan);
        // Refused before ONNX Runtime reads the weights (24 GB for FLUX's bf16 transformer) only to find no CPU kernel for them.
        if (scan?.HasBFloat16Weights == true && sessions.Active.Kind is ExecutionProviderKind.Cpu)
            throw new ModelLoadException(path, $"this {name} model computes in bfloat16 (its weights are bfloat16, as in Black Forest Labs' bf16 FLUX release), {BFloat16Advice}");
        InferenceSession session;
        ModelCacheStatus cacheStatus;
        int fused;
        try
        {
            session = sessions.Create(path, FusesAttention(name), null, out cacheStatus, out fused);
        }
        catch (OnnxRuntimeException e)
        {
            var hint = BFloat16Hint(scan?.HasBFloat16Weights == true, sessions) is { Length: > 0 } bf16 ? bf16 : MissingKernelHint(e.Message, sessions);
            throw new ModelLoadException(path, $"ONNX Runtime cannot load this {name} model: {e.Message.Trim()}{hint}", e);
        }
        return new OnnxComponent(name, path, session, scan, cacheStatus, sessions, fused) { ReleaseWhenIdle = releaseWhenIdle };
    }

    // The UNet's and the VAE's attention is plain multi-head attention; a text encoder's is masked (CLIP's causal mask),
    // so reading its file (hundreds of MB of embedded weights) for the rewrite would find nothing to fuse.
    private static bool FusesAttention(string component) => !component.StartsWith("text_encoder", StringComparison.Ordinal);

    /// <summary>
    /// Holds the session open until the returned lease is disposed, opening it again first if it was released. A stage
    /// that makes several calls (the denoising loop, tiled decoding) holds one lease over all of them; each call also
    /// takes its own, so a call outside a stage is safe too.
    /// </summary>
    public Lease Use()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _session ??= Reopen();
            _users++;
            return new Lease(this, _session);
        }
    }

    private void Return()
    {
        lock (_gate)
        {
            if (--_users > 0 || _session is null || !(ReleaseWhenIdle || _disposed)) return;
            _session.Dispose();
            _session = null;
            if (_disposed) ReleaseOverrides();
        }
    }

    /// <summary>What the weights that replace the model's own come from (a LoRA set); null: the model as it is.</summary>
    public string? OverridesIdentity
    {
        get
        {
            lock (_gate) return _overrides?.Identity;
        }
    }

    /// <summary>
    /// Replaces the weights the session runs with (<paramref name="overrides"/>, null for the model's own): the open
    /// session is closed and the next <see cref="Use"/> opens one with them. The component takes ownership of
    /// <paramref name="overrides"/>; the previous ones are released after the session that used them. Throws while a
    /// stage holds the session.
    /// </summary>
    public void SetOverrides(Adapters.InitializerOverrides? overrides)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_users > 0) throw new InvalidOperationException($"{Name}: its weights cannot change while a generation uses it.");
            _session?.Dispose();
            _session = null;
            ReleaseOverrides();
            _overrides = overrides;
        }
    }

    // Only once no session uses them: their pinned arrays back the session's weights.
    private void ReleaseOverrides()
    {
        _overrides?.Dispose();
        _overrides = null;
    }

    // The file was checked at load; what can go wrong now is what loading reports (a file changed or removed since).
    private InferenceSession Reopen()
    {
        CheckModelFile(FilePath);
        try
        {
            var session = _sessions.Create(FilePath, FusesAttention(Name), _overrides, out var cacheStatus, out _);
            LastOpenCacheStatus = cacheStatus;
            return session;
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelLoadException(FilePath, $"ONNX Runtime cannot load this {Name} model again: {e.Message.Trim()}", e);
        }
    }

    /// <summary>Releases the session now if no stage holds it; the next <see cref="Use"/> opens it again.</summary>
    public void ReleaseIfIdle()
    {
        lock (_gate)
        {
            if (_users > 0) return;
            _session?.Dispose();
            _session = null;
            if (_disposed) ReleaseOverrides();
        }
    }

    /// <summary>An I/O binding on the open session; only under a lease, and disposed before the lease is returned.</summary>
    public OrtIoBinding CreateIoBinding()
    {
        lock (_gate)
        {
            if (_session is null || _users == 0)
                throw new InvalidOperationException($"{Name}: an I/O binding needs the session held open by a lease (Use()).");
            return _session.CreateIoBinding();
        }
    }

    /// <summary>A session held open for a stage; dispose to return it.</summary>
    public readonly struct Lease(OnnxComponent owner, InferenceSession session) : IDisposable
    {
        /// <summary>The open session (valid until the lease is disposed).</summary>
        public InferenceSession Session { get; } = session;

        /// <inheritdoc/>
        public void Dispose() => owner?.Return();
    }

    // Exports optimised for a GPU (Microsoft Olive's, ONNX Runtime's transformer optimiser) fuse operators such as
    // com.microsoft GroupNorm, BiasSplitGelu or NhwcConv that only the CUDA/DirectML providers implement; ONNX Runtime says
    // only that no implementation was found.
    private static string MissingKernelHint(string message, SessionFactory sessions) =>
        message.Contains("Could not find an implementation for", StringComparison.Ordinal)
            ? $" The graph uses an operator the {sessions.Active} execution provider does not implement: exports optimised for a GPU " +
              "(Microsoft Olive's, ONNX Runtime's transformer optimiser, with fused operators such as GroupNorm) run only on the provider " +
              "they were optimised for (--device cuda or directml); elsewhere use an unoptimised export."
            : "";

    // Black Forest Labs' bf16 FLUX release: ONNX Runtime's CPU provider implements few operators in bfloat16 (no MatMul,
    // no convolution), so such a graph fails to load or to run there with only "no implementation found"; CUDA runs it.
    private static string BFloat16Hint(bool bfloat16, SessionFactory sessions) =>
        bfloat16 && sessions.Active.Kind is ExecutionProviderKind.Cpu
            ? $". This model computes in bfloat16 (its weights or inputs are bfloat16, as in Black Forest Labs' bf16 FLUX release), {BFloat16Advice}"
            : "";

    private const string BFloat16Advice = "which ONNX Runtime's CPU execution provider cannot run (it has no bfloat16 MatMul): " +
        "use --device cuda (PipelineOptions.Device = \"cuda\"), or an fp32/fp16 export of the model.";

    private bool DeclaresBFloat16 => Scan?.HasBFloat16Weights == true
        || Inputs.Values.Any(s => s.ElementType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.BFloat16)
        || Outputs.Values.Any(s => s.ElementType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.BFloat16);

    /// <summary>
    /// Runs the session. A failure that is not a cancellation (<see cref="RunOptions.Terminate"/>) becomes a
    /// <see cref="ModelLoadException"/> naming this model's file: the inputs were validated, so the model is at fault.
    /// </summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(RunOptions runOptions, IReadOnlyCollection<string> inputNames,
        IReadOnlyCollection<OrtValue> inputs, IReadOnlyCollection<string> outputNames)
    {
        using var lease = Use();
        try
        {
            return lease.Session.Run(runOptions, inputNames, inputs, outputNames);
        }
        catch (OnnxRuntimeException e) when (!runOptions.Terminate)
        {
            throw new ModelLoadException(FilePath, $"ONNX Runtime failed running this {Name} model: {e.Message.Trim()}{BFloat16Hint(DeclaresBFloat16, _sessions)}", e);
        }
    }

    /// <summary>Runs the session on bound tensors; failures are reported as by <see cref="Run"/>.</summary>
    public void RunWithBinding(RunOptions runOptions, OrtIoBinding binding)
    {
        using var lease = Use();
        try
        {
            lease.Session.RunWithBinding(runOptions, binding);
        }
        catch (OnnxRuntimeException e) when (!runOptions.Terminate)
        {
            throw new ModelLoadException(FilePath, $"ONNX Runtime failed running this {Name} model: {e.Message.Trim()}", e);
        }
    }

    /// <summary>The declared input <paramref name="name"/>, or an error listing what the model has.</summary>
    public TensorSpec Input(string name) => Inputs.TryGetValue(name, out var spec)
        ? spec
        : throw new ModelLoadException(FilePath, $"{Name} has no input '{name}'; its inputs are {DescribeAll(Inputs)}.");

    /// <summary>The output called <paramref name="preferred"/>, else the first output (exporters differ in naming).</summary>
    public TensorSpec OutputOrFirst(string preferred) =>
        Outputs.TryGetValue(preferred, out var spec) ? spec : Outputs.Values.First();

    public string DescribeInputs() => DescribeAll(Inputs);

    public string DescribeOutputs() => DescribeAll(Outputs);

    /// <summary>Releases the session now, or when the last lease still out is returned.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        ReleaseIfIdle();
    }

    private static string DescribeAll(IReadOnlyDictionary<string, TensorSpec> specs) =>
        string.Join(", ", specs.Values.Select(s => $"{s.Name} {s.Describe()}"));

    // ONNX Runtime reports a missing or short weights file against model.onnx, in a log line on stderr; name the file.
    private static void CheckExternalData(string modelPath, OnnxFileScan scan)
    {
        var directory = Path.GetDirectoryName(modelPath)!;
        foreach (var (location, needed) in scan.ExternalDataEnd)
        {
            var file = Path.GetFullPath(Path.Combine(directory, location));
            if (!File.Exists(file))
                throw new ModelLoadException(file, $"file not found: {Path.GetFileName(modelPath)} keeps its weights in this external-data file.");
            CheckNotLfsPointer(file, "weights");
            var length = new FileInfo(file).Length;
            if (length < needed)
                throw new ModelLoadException(file,
                    $"truncated: {Path.GetFileName(modelPath)} needs {needed.ToString("N0", CultureInfo.InvariantCulture)} bytes of weights from it, the file has {length.ToString("N0", CultureInfo.InvariantCulture)} (an interrupted download or copy?).");
        }
    }

    private static void CheckNotLfsPointer(string path, string what)
    {
        if (new FileInfo(path).Length >= 1024) return;
        var head = File.ReadAllText(path);
        if (head.StartsWith(LfsPointerPrefix, StringComparison.Ordinal))
            throw new ModelLoadException(path,
                $"this is a Git LFS pointer, not the {what}: fetch the real file (git lfs install && git lfs pull) and try again.");
    }

    private static void CheckModelFile(string path)
    {
        if (!File.Exists(path))
            throw new ModelLoadException(path, "file not found: an ONNX model was expected here.");
        var length = new FileInfo(path).Length;
        if (length == 0)
            throw new ModelLoadException(path, "the file is empty: an ONNX model was expected.");
        CheckNotLfsPointer(path, "model");
    }
}
