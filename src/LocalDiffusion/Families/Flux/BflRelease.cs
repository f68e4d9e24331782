using LocalDiffusion.Latents;
using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Families.Flux;

/// <summary>
/// Black Forest Labs' own ONNX release of FLUX.1 (Hugging Face black-forest-labs/FLUX.1-dev-onnx and FLUX.1-schnell-onnx,
/// written for TensorRT by github.com/black-forest-labs/flux's src/flux/trt/exporter/): <c>clip.opt/</c>, <c>t5.opt/</c>,
/// <c>transformer.opt/&lt;precision&gt;/</c>, <c>vae.opt/</c>, each a model.onnx, and nothing else — no model_index.json,
/// scheduler config, component configs or tokenizers. Every difference from diffusers' layout that is a matter of files
/// is resolved here (names and dtypes are absorbed where tensors are made: <see cref="OrtTensors"/>, the encoders'
/// and decoder's input/output lookups); <see cref="FluxFamily"/> then opens the same components as for diffusers' layout.
/// </summary>
/// <param name="Clip">clip.opt/model.onnx: input_ids int32 [B,77] → pooled_embeddings.</param>
/// <param name="T5">t5.opt/model.onnx: input_ids int32 [B,L] → text_embeddings, L static.</param>
/// <param name="Transformer">transformer.opt/<paramref name="Precision"/>/model.onnx → latent.</param>
/// <param name="Precision">The precision folder chosen.</param>
/// <param name="VaeDecoder">vae.opt/model.onnx: latent → images.</param>
/// <param name="ClipTokenizer">tokenizer/, added by the user.</param>
/// <param name="T5Tokenizer">tokenizer_2/, added by the user.</param>
internal sealed record BflRelease(string Clip, string T5, string Transformer, string Precision, string VaeDecoder, string ClipTokenizer, string T5Tokenizer)
{
    private const string TransformerFolder = "transformer.opt";

    // Where a folder of this layout holds its models; any of them marks the layout.
    private static readonly string[] Folders = ["clip.opt", "t5.opt", TransformerFolder, "vae.opt"];

    // Precision folders ONNX Runtime can run, in the order they are preferred: full precision first (the CPU runs only
    // it), then the half precisions CUDA runs. fp8 and fp4 hold TensorRT's quantised graphs.
    private static readonly string[] Runnable = ["fp32", "fp16", "bf16"];

    /// <summary>
    /// The autoencoder's latent scale and shift (flux's util.py ae_params: scale_factor 0.3611, shift_factor 0.1159, as
    /// diffusers' FLUX VAE config). The exported graph is flux.modules.autoencoder.Decoder alone (cli.py hands the exporter
    /// <c>ae.decoder</c>); z / scale + shift is done by the TensorRT engine's wrapper (trt/engine/vae_engine.py) before the
    /// graph, so the engine applies it here exactly as for diffusers' vae_decoder.
    /// </summary>
    public static LatentFormat Latents { get; } = new(16, 0.3611f, 0.1159f);

    /// <summary>Whether <paramref name="folder"/> is laid out as Black Forest Labs' release (no model_index.json; a *.opt model folder).</summary>
    public static bool Matches(FamilyFolder folder) =>
        folder.PipelineClass is null && !File.Exists(folder.IndexPath) && Array.Exists(Folders, f => Directory.Exists(Path.Combine(folder.Root, f)));

    /// <summary>What <c>info</c> reports as the layout.</summary>
    public string Layout => $"Black Forest Labs' TensorRT ONNX release ({TransformerFolder}/{Precision})";

    /// <summary>
    /// Finds every file before any is opened: the transformer's precision folder, the three other models, and the
    /// tokenizers the user must add. Each refusal names the file or folder and where to get what is missing.
    /// </summary>
    public static BflRelease Find(FamilyFolder folder)
    {
        var transformer = FindTransformer(folder.Root, out var precision);
        var clip = folder.Model("clip.opt", "CLIP-L (Black Forest Labs' clip.opt, input_ids → pooled_embeddings)");
        var t5 = folder.Model("t5.opt", "the T5 encoder (Black Forest Labs' t5.opt, input_ids → text_embeddings)");
        var vae = folder.Model("vae.opt", "the VAE decoder (Black Forest Labs' vae.opt, latent → images)");
        RequireTokenizers(folder.Root);
        return new BflRelease(clip, t5, transformer, precision, vae, Path.Combine(folder.Root, "tokenizer"), Path.Combine(folder.Root, "tokenizer_2"));
    }

    /// <summary>
    /// FLUX's FlowMatchEulerDiscreteScheduler config, which the release does not ship: the values of the diffusers
    /// repositories' scheduler/scheduler_config.json (black-forest-labs/FLUX.1-dev: dynamic shifting, base_shift 0.5,
    /// max_shift 1.15 over 256–4096 image tokens, shift 3.0 unused with dynamic shifting; FLUX.1-schnell: shift 1.0, no
    /// dynamic shifting), which are also Black Forest Labs' own sampling.get_schedule (μ linear from (256, 0.5) to
    /// (4096, 1.15); schnell unshifted, cli.py <c>shift=(name != "flux-schnell")</c>).
    /// </summary>
    public static SchedulerConfig Scheduler(bool dev) => SchedulerConfig.Parse(
        $$"""
        {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": {{(dev ? "3.0" : "1.0")}},
         "use_dynamic_shifting": {{(dev ? "true" : "false")}}, "base_shift": 0.5, "max_shift": 1.15, "base_image_seq_len": 256, "max_image_seq_len": 4096}
        """, dev ? "FLUX.1-dev's scheduler config (built in: Black Forest Labs' release has none)" : "FLUX.1-schnell's scheduler config (built in: Black Forest Labs' release has none)");

    private static string FindTransformer(string root, out string precision)
    {
        var folder = Path.Combine(root, TransformerFolder);
        foreach (var p in Runnable)
        {
            var path = Path.Combine(folder, p, "model.onnx");
            if (File.Exists(path))
            {
                precision = p;
                return path;
            }
        }
        var present = Directory.Exists(folder)
            ? Directory.EnumerateDirectories(folder).Where(d => File.Exists(Path.Combine(d, "model.onnx"))).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList()
            : [];
        if (present.Count == 0)
            throw new ModelLoadException(folder,
                $"no transformer found: Black Forest Labs' layout keeps the FLUX transformer in {TransformerFolder}/<precision>/model.onnx ({string.Join(", ", Runnable)} run here); none of its folders has a model.onnx.");
        throw new ModelLoadException(Path.Combine(folder, present[0]!),
            $"this release's transformer comes only as {string.Join(" and ", present.Select(p => $"{TransformerFolder}/{p}/"))}: fp8 and fp4 are quantised for NVIDIA TensorRT " +
            "(TensorRT's FP8/FP4 quantize nodes, which ONNX Runtime's CPU and CUDA providers do not implement); run those with TensorRT itself, " +
            $"or add {TransformerFolder}/bf16/ (from the same Hugging Face repository; it needs --device cuda) or an fp32/fp16 export.");
    }

    // BFL's TensorRT pipeline loads its tokenizers from the diffusers repositories at run time; the ONNX release has none.
    private static void RequireTokenizers(string root)
    {
        (string File, string What)[] needed =
        [
            ("tokenizer/vocab.json", "CLIP-L's BPE vocabulary"),
            ("tokenizer/merges.txt", "CLIP-L's BPE merges"),
            ("tokenizer_2/spiece.model", "T5's SentencePiece model"),
        ];
        var missing = needed.Where(n => !File.Exists(Path.Combine(root, n.File))).ToList();
        if (missing.Count == 0) return;
        throw new ModelLoadException(Path.Combine(root, missing[0].File),
            $"Black Forest Labs' ONNX release ships no tokenizers, and {string.Join(", ", missing.Select(m => $"{m.File} ({m.What})"))} {(missing.Count == 1 ? "is" : "are")} missing. " +
            "Add tokenizer/vocab.json and tokenizer/merges.txt from openai/clip-vit-large-patch14 (the same files as black-forest-labs/FLUX.1-dev's tokenizer/), " +
            "and tokenizer_2/spiece.model from google/t5-v1_1-xxl (as FLUX.1-dev's tokenizer_2/), into this folder.");
    }
}
