using LocalDiffusion.Onnx;
using LocalDiffusion.Vae;

namespace LocalDiffusion.Model;

/// <summary>
/// A VAE decoder given apart from the model folder (<see cref="PipelineOptions.VaeDecoderPath"/>, the CLI's
/// <c>--vae</c>): a <c>.onnx</c> file, a decoder folder in the diffusers/optimum layout (<c>model.onnx</c> and
/// <c>config.json</c>), or a whole model folder whose <c>vae_decoder/</c> is taken; or a TAESD decoder in any of those
/// forms, or madebyollin's file names (<c>taesd_decoder.onnx</c>, …) in a folder. Also where the float32 variant of
/// any decoder would lie.
/// </summary>
public sealed record VaeDecoderFile
{
    /// <summary>The ONNX model.</summary>
    public required string ModelPath { get; init; }

    /// <summary>The config.json beside it, when there is one.</summary>
    public string? ConfigPath { get; init; }

    /// <summary>The <c>scaling_factor</c> that config.json states, when it does.</summary>
    public float? ScalingFactor { get; init; }

    /// <summary>Whether this is a TAESD (tiny autoencoder) decoder, by its config.json or its graph.</summary>
    public bool IsTiny => Tiny is not null;

    /// <summary>The TAESD form, when <see cref="IsTiny"/>.</summary>
    internal TinyDecoderForm? Tiny { get; init; }

    /// <summary>madebyollin's names for the TAESD decoders (SD 1.x/2.x, SDXL, SD 3, FLUX.1), as A1111, ComfyUI and Unpaint keep them.</summary>
    public static IReadOnlyList<string> TinyDecoderFileNames { get; } = ["taesd_decoder.onnx", "taesdxl_decoder.onnx", "taesd3_decoder.onnx", "taef1_decoder.onnx"];

    /// <summary>The folder a model ships its TAESD in, beside vae_decoder/.</summary>
    public const string ModelTinyFolder = "taesd";

    /// <summary>
    /// The TAESD decoder the model folder <paramref name="modelRoot"/> ships for previews: its <c>taesd/</c> folder (any
    /// layout <see cref="Open"/> takes), else one of <see cref="TinyDecoderFileNames"/> beside model_index.json; null when
    /// it ships none.
    /// </summary>
    /// <exception cref="ModelLoadException">A taesd/ folder without a decoder in it.</exception>
    public static VaeDecoderFile? FindInModel(string modelRoot)
    {
        ArgumentNullException.ThrowIfNull(modelRoot);
        var folder = Path.Combine(modelRoot, ModelTinyFolder);
        if (Directory.Exists(folder)) return Open(folder);
        return TinyDecoderFileNames.Select(n => Path.Combine(modelRoot, n)).FirstOrDefault(File.Exists) is { } file ? Open(file) : null;
    }

    /// <summary>
    /// Where a float32 variant of the decoder <paramref name="modelPath"/> ships, named as diffusers names weight variants
    /// (<c>model.onnx</c> → <c>model.fp32.onnx</c>, beside it). An fp16 decoder that overflows is decoded again with it.
    /// </summary>
    public static string Float32VariantOf(string modelPath)
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        return Path.Combine(Path.GetDirectoryName(modelPath) ?? "", Path.GetFileNameWithoutExtension(modelPath) + ".fp32" + Path.GetExtension(modelPath));
    }

    /// <summary>Finds the decoder <paramref name="path"/> names; errors name the file or folder at fault.</summary>
    /// <exception cref="ModelLoadException">Nothing there, a non-ONNX weights file, or a folder without a decoder.</exception>
    public static VaeDecoderFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        string model;
        if (File.Exists(full))
        {
            model = Path.GetExtension(full).ToLowerInvariant() switch
            {
                ".onnx" => full,
                ".safetensors" or ".ckpt" or ".pt" or ".bin" => throw new ModelLoadException(full,
                    "this is a PyTorch/safetensors VAE (the kind AUTOMATIC1111 and ComfyUI load); LocalDiffusion runs ONNX: export the VAE's decoder to ONNX (e.g. optimum-cli on a diffusers folder holding it as vae/) and give its vae_decoder/ folder."),
                _ => throw new ModelLoadException(full, "a VAE decoder was expected here: an .onnx file or a folder holding model.onnx."),
            };
        }
        else if (Directory.Exists(full))
        {
            var own = Path.Combine(full, "model.onnx");
            var inModel = Path.Combine(full, "vae_decoder", "model.onnx");
            var madebyollin = TinyDecoderFileNames.Select(n => Path.Combine(full, n)).Where(File.Exists).ToList();
            if (madebyollin.Count > 1 && !File.Exists(own) && !File.Exists(inModel))
                throw new ModelLoadException(full, $"this folder holds {madebyollin.Count} TAESD decoders ({string.Join(", ", madebyollin.Select(Path.GetFileName))}): give the file of the one for this model.");
            model = File.Exists(own) ? own
                : File.Exists(inModel) ? inModel
                : madebyollin.Count == 1 ? madebyollin[0]
                : throw new ModelLoadException(own,
                    "file not found: a VAE decoder folder holds model.onnx (the diffusers/optimum layout's vae_decoder/: model.onnx and config.json), or give a model folder with vae_decoder/model.onnx " +
                    $"(a TAESD folder: taesd/vae_decoder/model.onnx, or one of {string.Join(", ", TinyDecoderFileNames)}).");
        }
        else
        {
            throw new ModelLoadException(full, "not found: the VAE decoder to use instead of the model's (an .onnx file or a vae_decoder folder) was expected here.");
        }
        return Describe(model);
    }

    /// <summary>
    /// The decoder live previews use when it differs from <paramref name="pictures"/>: the one the options name, else the
    /// model folder's TAESD (none needed when the pictures are already decoded by a TAESD); null under
    /// <see cref="PipelineOptions.FullVaePreviews"/> or when previews use the pictures' decoder.
    /// </summary>
    internal static VaeDecoderFile? ForPreviews(PipelineOptions options, string modelRoot, VaeDecoderFile pictures)
    {
        if (options.FullVaePreviews) return null;
        var file = options.PreviewDecoderPath is { } path ? Open(path)
            : pictures.IsTiny ? null
            : FindInModel(modelRoot);
        return file is null || file.ModelPath == pictures.ModelPath ? null : file;
    }

    /// <summary>The decoder <paramref name="modelPath"/> with the config.json beside it (if any) read, and whether it is a TAESD.</summary>
    public static VaeDecoderFile Describe(string modelPath)
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        var config = Path.Combine(Path.GetDirectoryName(modelPath)!, "config.json");
        var configPath = File.Exists(config) ? config : null;
        var tiny = TinyDecoderForm.Detect(modelPath, configPath);
        // A TAESD's scaling_factor is 1.0 by definition (it decodes the denoiser's latents): not the model's, and not compared with it.
        return configPath is not null && tiny is null
            ? new VaeDecoderFile { ModelPath = modelPath, ConfigPath = configPath, ScalingFactor = ModelFolder.ReadVaeScalingFactor(configPath) }
            : new VaeDecoderFile { ModelPath = modelPath, ConfigPath = configPath, Tiny = tiny };
    }
}
