using LocalDiffusion.Errors;

namespace LocalDiffusion;

/// <summary>How a pipeline is loaded: execution provider and threading.</summary>
public sealed record PipelineOptions
{
    /// <summary><c>auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml</c>; auto tries GPUs, then the CPU.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Threads ONNX Runtime uses inside one operator (null: its default, one per physical core); at most the
    /// machine's logical cores.</summary>
    public int? IntraOpThreads { get; init; }

    /// <summary>Threads ONNX Runtime uses across operators (null: its default); at most the machine's logical cores.</summary>
    public int? InterOpThreads { get; init; }

    /// <summary>
    /// The optimised-model cache folder (see <see cref="Onnx.ModelCache"/>); null: <c>$LOCALDIFFUSION_CACHE</c>, else
    /// the platform's cache folder (<see cref="Onnx.ModelCache.DefaultDirectory"/>).
    /// </summary>
    public string? CacheDirectory { get; init; }

    /// <summary>
    /// LoRAs applied to every generation (CLI <c>--lora PATH[:WEIGHT]</c>), before those a request adds
    /// (<see cref="GenerationRequest.Loras"/>, <c>&lt;lora:NAME:WEIGHT&gt;</c> in the prompt). Merged into the weights when a
    /// generation needs them; see <see cref="LoraAdapter"/>.
    /// </summary>
    public IReadOnlyList<LoraAdapter> Loras { get; init; } = [];

    /// <summary>The folder where <c>&lt;lora:NAME:WEIGHT&gt;</c> finds NAME.safetensors (CLI <c>--lora-dir</c>); null: prompt tags are refused.</summary>
    public string? LoraDirectory { get; init; }

    /// <summary>
    /// Textual-inversion embeddings (CLI <c>--embedding PATH</c>): A1111 <c>.pt</c>/<c>.safetensors</c>, diffusers
    /// <c>learned_embeds</c>, SDXL <c>clip_l</c>/<c>clip_g</c> pairs. Each is used where its file name (without extension)
    /// appears in a prompt or negative prompt, as in A1111. Read and checked at load: a file that does not fit this model's
    /// text encoders is an <see cref="Embeddings.TextualInversionException"/> naming the file and key. SD 3 and FLUX.1 apply
    /// them to their CLIP encoders, each the vectors of its width (T5 reads the prompt as written).
    /// </summary>
    public IReadOnlyList<string> Embeddings { get; init; } = [];

    /// <summary>
    /// A folder of embeddings (CLI and server <c>--embeddings-dir</c>, A1111's embeddings/ folder), read at load with
    /// subfolders; files that do not fit this model are skipped (<c>StableDiffusionPipeline.SkippedEmbeddings</c>),
    /// and a prompt that names one is refused saying why. Null: none.
    /// </summary>
    public string? EmbeddingsDirectory { get; init; }

    /// <summary>
    /// Skip LoRA layers that match no weight of the model (as AUTOMATIC1111 does), counting them in the result's warnings,
    /// instead of refusing the LoRA (default false: a LoRA made for another model is an error naming the file and key).
    /// </summary>
    public bool SkipUnmatchedLoraLayers { get; init; }

    /// <summary>Whether optimised graphs are stored and reused between starts (default true).</summary>
    public bool UseModelCache { get; init; } = true;

    /// <summary>Tiled VAE decoding (diffusers' enable_tiling): by default on for images over 1024², in 512-pixel tiles.</summary>
    public VaeTilingOptions VaeTiling { get; init; } = new();

    /// <summary>
    /// Another VAE decoder to decode with instead of the model's (what AUTOMATIC1111's and ComfyUI's VAE choice does, e.g.
    /// an fp32 or fp16-fix SDXL VAE): an ONNX file, a decoder folder in the diffusers/optimum layout (model.onnx, and
    /// config.json whose scaling_factor must then equal the model's), or a model folder whose vae_decoder/ is taken.
    /// Checked at load: a missing or unusable file is a <see cref="Onnx.ModelLoadException"/> naming it, and its latent
    /// channels must be the UNet's 4. Null: the model's vae_decoder/model.onnx.
    /// </summary>
    public string? VaeDecoderPath { get; init; }

    /// <summary>
    /// The decoder live previews (<see cref="GenerationRequest.PreviewSteps"/>) are decoded with: a TAESD (the tiny
    /// autoencoder, milliseconds where the full VAE takes seconds), given as <see cref="VaeDecoderPath"/> is. Null: the
    /// TAESD the model folder ships (<c>taesd/</c>, or madebyollin's <c>taesd_decoder.onnx</c>, <c>taesdxl_decoder.onnx</c>,
    /// <c>taesd3_decoder.onnx</c>, <c>taef1_decoder.onnx</c>), else the decoder the pictures use. Final pictures keep the full
    /// VAE unless <see cref="VaeDecoderPath"/> names a TAESD. A decoder for other latent channels is refused at load, naming it.
    /// </summary>
    public string? PreviewDecoderPath { get; init; }

    /// <summary>
    /// Live previews with the decoder the pictures use (the full VAE, unless <see cref="VaeDecoderPath"/> names a TAESD) even
    /// when the model folder ships a TAESD: AUTOMATIC1111's "Full" live preview method.
    /// </summary>
    public bool FullVaePreviews { get; init; }

    /// <summary>
    /// Holds each model only while its stage runs (as stable-diffusion.cpp's CLI frees each model's weights once used):
    /// the text encoders are released when the prompts are encoded, the UNet when denoising ends, the VAE after decoding,
    /// and each is opened again by the next stage that needs it (from the optimised-model cache, about a second for an
    /// SD-1.5 UNet). A generation's peak memory is then its largest stage (the UNet's weights and working memory) instead
    /// of every model's weights plus the working memory of whichever stage runs. Pictures are bit-identical. Costs
    /// nothing for the first generation after loading (it uses the sessions loading opened); later ones reopen what they
    /// use (with <see cref="UseModelCache"/> off, each reopening optimises the model again: keep the cache on). Default
    /// false: a server or a loop of generations keeps everything loaded.
    /// </summary>
    public bool LowMemory { get; init; }

    /// <summary>
    /// How many prompts' encoded conditioning to keep (least recently used first out), so a repeated prompt skips the text
    /// encoders; pictures are bit-identical either way. 0 (the default) keeps none; the server keeps 64.
    /// </summary>
    public int PromptCacheEntries { get; init; }

    /// <summary>
    /// The most rows one UNet call takes; null (default): every row of an evaluation (the guidance pair of each image,
    /// and every image) in one call, except SDXL base and refiner UNets on the CPU, which take one row per call (at 1024²
    /// the pair in one call peaked at 12.7 GB on the SDXL-size export, one row at 10.9 GB, in the same step time). 1 runs the unconditional and conditional halves as two calls, as AUTOMATIC1111 does
    /// without <c>batch_cond_uncond</c> (its --medvram): the UNet's working memory halves, for a little more time per
    /// step on a GPU (measured on the CPU: benchmarks/README.md). Rows of one-row calls may differ from batched ones in
    /// the last float bits where weight prepacking is off (the CPU default). An export with a static batch keeps its own.
    /// </summary>
    public int? MaxUnetBatch { get; init; }

    /// <summary>
    /// Rewrites written-out attention (as torch.onnx exports it) into ONNX Runtime's fused MultiHeadAttention when a model
    /// is opened on the CPU or CUDA, after checking each block gives the same result (default true; the optimised-model
    /// cache stores the rewritten graph, so it is done once). On an SD-1.5 UNet at 512² on the CPU: steps about 25 %
    /// faster, no slow first step, 3 GB less memory (benchmarks/README.md); pictures agree to float rounding. False opens
    /// the file's graph as it is. tools/fuse_attention.py does the same once to a model folder.
    /// </summary>
    public bool FuseAttention { get; init; } = true;

    /// <summary>Where scheduler names are looked up; null: <see cref="Schedulers.SchedulerRegistry.Default"/> (register plug-ins there or pass your own).</summary>
    public Schedulers.SchedulerRegistry? Schedulers { get; init; }

    /// <summary>ONNX Runtime's CPU memory arena (<c>SessionOptions.EnableCpuMemArena</c>); null: its default (on).</summary>
    public bool? EnableCpuMemArena { get; init; }

    /// <summary>
    /// ONNX Runtime's memory-pattern planning (<c>SessionOptions.EnableMemoryPattern</c>); null: off on the CPU, ONNX
    /// Runtime's default (on) elsewhere. On the CPU the plan is made after a shape's first run and its one large
    /// block is allocated fresh on the second, so the first two UNet calls of an SD-1.5 512² run both faulted in
    /// gigabytes (peak RSS 13.0 GB, second call 2.7× a steady one); without it, 8.8 GB and 1.0× (benchmarks/README.md).
    /// </summary>
    public bool? EnableMemoryPattern { get; init; }

    /// <summary>
    /// How the CPU arena grows: <c>null</c> or <c>next_power_of_two</c> (ONNX Runtime's default, per session) or
    /// <c>same_as_requested</c> (one process-wide arena shared by every session, grown by exactly what is asked;
    /// <c>session.use_env_allocators</c> with an <c>OrtArenaCfg</c> of strategy kSameAsRequested).
    /// </summary>
    public string? CpuArenaExtendStrategy { get; init; }

    /// <summary>
    /// Whether the CPU provider re-packs MatMul/Gemm weights when a session is created (ONNX Runtime's default);
    /// default false here (<c>session.disable_prepacking = 1</c>): on an SD-1.5-size UNet the packing was most of a
    /// start from the optimised-model cache (5.6 → 3.8 s) and steps were no slower (benchmarks/README.md).
    /// </summary>
    public bool PrepackWeights { get; init; }

    /// <summary>Extra ONNX Runtime session configuration entries (<c>AddSessionConfigEntry</c>), e.g.
    /// <c>session.intra_op.allow_spinning = 0</c>; applied to every session after the engine's own.</summary>
    public IReadOnlyDictionary<string, string>? SessionConfig { get; init; }

    /// <summary>CUDA provider options (for <c>cuda</c>, <c>tensorrt</c>'s CUDA fallback and <c>auto</c>); null: ONNX Runtime's defaults.</summary>
    public CudaProviderSettings? Cuda { get; init; }

    /// <summary>TensorRT provider options (for <c>tensorrt</c> and <c>auto</c>); null: fp16 off, no caches, no profiles.</summary>
    public TensorRtProviderSettings? TensorRT { get; init; }

    /// <summary>Checks the options before anything is loaded and parses <see cref="Device"/>.</summary>
    /// <exception cref="InvalidRequestException">A value is out of range; the message names the option.</exception>
    internal ExecutionDevice Validate()
    {
        CheckThreads(nameof(IntraOpThreads), IntraOpThreads);
        if (VaeDecoderPath is { } vae && string.IsNullOrWhiteSpace(vae))
            throw new InvalidRequestException(nameof(VaeDecoderPath), vae, "an .onnx file or a vae_decoder folder", name => $"{name} is empty; give an .onnx file or a vae_decoder folder, or null for the model's own.");
        if (PreviewDecoderPath is { } preview && string.IsNullOrWhiteSpace(preview))
            throw new InvalidRequestException(nameof(PreviewDecoderPath), preview, "a TAESD decoder", called => $"{called} is empty; give a TAESD decoder (.onnx file or folder), or null for the model's own.");
        if (PreviewDecoderPath is not null && FullVaePreviews)
            throw new InvalidRequestException(nameof(PreviewDecoderPath), PreviewDecoderPath, "one preview decoder", called => $"{called} and FullVaePreviews both set: previews use one decoder; set one of them.");
        CheckThreads(nameof(InterOpThreads), InterOpThreads);
        // The cache would fail to create its folder and quietly run uncached (slow loads every time): a file is a mistake.
        if (CacheDirectory is { } cache && File.Exists(cache))
            throw new InvalidRequestException(nameof(CacheDirectory), cache, "a folder", name => $"{name} {cache} is a file, not a folder; give a folder for the optimised-model cache.");
        if (PromptCacheEntries is < 0 or > 100_000)
            throw InvalidRequestException.OutOfRange(nameof(PromptCacheEntries), PromptCacheEntries, "between 0 (off) and 100000");
        if (MaxUnetBatch is < 1)
            throw InvalidRequestException.OutOfRange(nameof(MaxUnetBatch), MaxUnetBatch, "at least 1 (or null for every row in one call)");
        if (CpuArenaExtendStrategy is not (null or "next_power_of_two" or "same_as_requested"))
            throw new InvalidRequestException(nameof(CpuArenaExtendStrategy), CpuArenaExtendStrategy, "next_power_of_two or same_as_requested",
                name => $"{name} is '{CpuArenaExtendStrategy}'; use next_power_of_two or same_as_requested.");
        var device = ExecutionDevice.Parse(Device ?? throw new InvalidRequestException(nameof(Device), null, "a device name",
            name => $"{name} must not be null (use \"auto\")."));
        // Provider options that the chosen provider can never use are a mistake to report, not to drop silently.
        Cuda?.Validate();
        TensorRT?.Validate();
        if (Cuda is not null && device.Kind is not (ExecutionProviderKind.Auto or ExecutionProviderKind.Cuda or ExecutionProviderKind.TensorRT))
            throw new InvalidRequestException(nameof(Cuda), Device, "cuda, tensorrt or auto", _ => $"CUDA options are set, but Device is '{Device}': they apply to cuda, tensorrt or auto only.");
        if (TensorRT is not null && device.Kind is not (ExecutionProviderKind.Auto or ExecutionProviderKind.TensorRT))
            throw new InvalidRequestException(nameof(TensorRT), Device, "tensorrt or auto", _ => $"TensorRT options are set, but Device is '{Device}': they apply to tensorrt or auto only.");
        return device;
    }

    // More threads than cores only makes the operators fight over them (200 threads on 2 cores: 20× slower).
    private static void CheckThreads(string name, int? value)
    {
        var cores = Environment.ProcessorCount;
        if (value is { } v && (v < 1 || v > cores))
            throw InvalidRequestException.OutOfRange(name, v, $"between 1 and {cores}, the logical cores of this machine (or unset for ONNX Runtime's default)");
    }
}
