using LocalDiffusion.Onnx;

namespace LocalDiffusion.Model;

/// <summary>
/// A VAE decoder given apart from the model folder (<see cref="PipelineOptions.VaeDecoderPath"/>, the CLI's
/// <c>--vae</c>): a <c>.onnx</c> file, a decoder folder in the diffusers/optimum layout (<c>model.onnx</c> and
/// <c>config.json</c>), or a whole model folder whose <c>vae_decoder/</c> is taken. Also where the float32 variant of
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
            model = File.Exists(own) ? own
                : File.Exists(inModel) ? inModel
                : throw new ModelLoadException(own,
                    "file not found: a VAE decoder folder holds model.onnx (the diffusers/optimum layout's vae_decoder/: model.onnx and config.json), or give a model folder with vae_decoder/model.onnx.");
        }
        else
        {
            throw new ModelLoadException(full, "not found: the VAE decoder to use instead of the model's (an .onnx file or a vae_decoder folder) was expected here.");
        }
        var config = Path.Combine(Path.GetDirectoryName(model)!, "config.json");
        return File.Exists(config)
            ? new VaeDecoderFile { ModelPath = model, ConfigPath = config, ScalingFactor = ModelFolder.ReadVaeScalingFactor(config) }
            : new VaeDecoderFile { ModelPath = model };
    }
}
