using LocalDiffusion.Errors;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Model;

/// <summary>What a loaded pipeline found in its model folder.</summary>
public sealed record ModelInfo
{
    /// <summary>The model folder.</summary>
    public required string Root { get; init; }

    /// <summary>model_index.json's pipeline class, if any.</summary>
    public string? PipelineClass { get; init; }

    /// <summary>
    /// How the folder is laid out: "diffusers" (model_index.json and component folders, optimum's ONNX export) or
    /// "Black Forest Labs' TensorRT ONNX release (transformer.opt/&lt;precision&gt;)" for FLUX.1's own ONNX files.
    /// </summary>
    public string Layout { get; init; } = "diffusers";

    /// <summary>The execution provider the sessions run on, e.g. <c>cpu</c> or <c>cuda:0</c>.</summary>
    public required string Device { get; init; }

    /// <summary>Why providers that <c>auto</c> tried were passed over.</summary>
    public IReadOnlyList<string> DeviceNotes { get; init; } = [];

    /// <summary>The ONNX components and their declared inputs/outputs.</summary>
    public required IReadOnlyList<ComponentInfo> Components { get; init; }

    /// <summary>The scheduler class model's scheduler_config.json names (used when a request names none).</summary>
    public required string Scheduler { get; init; }

    /// <summary>Default image width in pixels.</summary>
    public required int NativeWidth { get; init; }

    /// <summary>Default image height in pixels.</summary>
    public required int NativeHeight { get; init; }

    /// <summary>Image sides must be multiples of this many pixels: 8 (the VAE) times 2 per down-sampling level of the UNet
    /// (64 for SD 1.x/2.x exports, whose UNet halves the latents three times).</summary>
    public int SizeMultiple { get; init; } = 8;

    /// <summary>The VAE latent scaling factor in use.</summary>
    public required float VaeScalingFactor { get; init; }

    /// <summary>The VAE decoder in use: the model's vae_decoder/model.onnx, or <see cref="PipelineOptions.VaeDecoderPath"/>'s.</summary>
    public string VaeDecoderPath { get; init; } = "";

    /// <summary>"float16" when the decoder computes in float16 (float16 I/O or weights), else "float32".</summary>
    public string VaeDecoderPrecision { get; init; } = "float32";

    /// <summary>
    /// The float32 decoder used when the float16 one overflows (its <c>.fp32.onnx</c> variant, shipped beside it), or null
    /// when there is none: then an overflow is a <see cref="GenerationNumericsException"/>.
    /// </summary>
    public string? VaeDecoderFallbackPath { get; init; }

    /// <summary>"TAESD" when the pictures are decoded by a tiny autoencoder (<see cref="PipelineOptions.VaeDecoderPath"/> named one), else "VAE".</summary>
    public string VaeDecoderKind { get; init; } = "VAE";

    /// <summary>
    /// The decoder live previews use: a TAESD (<see cref="PipelineOptions.PreviewDecoderPath"/>, or the one the model folder
    /// ships), else <see cref="VaeDecoderPath"/>.
    /// </summary>
    public string PreviewDecoderPath { get; init; } = "";

    /// <summary>"TAESD" or "VAE": what <see cref="PreviewDecoderPath"/> is.</summary>
    public string PreviewDecoderKind { get; init; } = "VAE";

    /// <summary>The tokenizer's vocabulary size.</summary>
    public required int TokenizerVocabularySize { get; init; }

    /// <summary>The UNet's fixed batch size, or null when dynamic (a fixed 1 means CFG runs as two calls).</summary>
    public long? UnetFixedBatch { get; init; }

    /// <summary>How the UNet's attention is spelled: "fused (…)", "unfused (…)" with the remedy, "none found" or "unknown".</summary>
    public string UnetAttention { get; init; } = "unknown";

    /// <summary>
    /// The UNet's ControlNet residual inputs (down-block ones plus the mid-block one; 13 for SD 1.x/2.x), or 0 for an export
    /// without them, which no ControlNet can steer.
    /// </summary>
    public int UnetControlNetResiduals { get; init; }

    /// <summary>What kind of model this is (SD 1.x/2.x, prediction type, inpainting, distillation), decided at load.</summary>
    public required Model.ModelFamily Family { get; init; }

    /// <summary>
    /// What the model can be asked to do: "text-to-image" (4-channel UNet), "img2img" and "inpainting" (with a
    /// vae_encoder), or only "inpainting" for a 9-channel inpainting UNet.
    /// </summary>
    public IReadOnlyList<string> Tasks { get; init; } = [];
}

/// <summary>One ONNX model of the pipeline.</summary>
/// <param name="Name">Folder name: text_encoder, unet, vae_decoder, vae_encoder.</param>
/// <param name="FilePath">Its model.onnx.</param>
/// <param name="Inputs">Declared inputs.</param>
/// <param name="Outputs">Declared outputs.</param>
public sealed record ComponentInfo(string Name, string FilePath, IReadOnlyList<TensorSpec> Inputs, IReadOnlyList<TensorSpec> Outputs)
{
    /// <summary>Whether its session was loaded from the optimised-model cache, stored there, or neither.</summary>
    public ModelCacheStatus Cache { get; init; }
}
