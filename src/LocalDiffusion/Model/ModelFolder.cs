using System.Globalization;
using System.Text.Json;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Model;

/// <summary>
/// A Stable Diffusion model folder in the diffusers/optimum ONNX layout: where each component lives and the
/// settings read from model_index.json and the components' config.json files.
/// </summary>
public sealed record ModelFolder
{
    /// <summary>The folder.</summary>
    public required string Root { get; init; }

    /// <summary>The pipeline class model_index.json names (e.g. OnnxStableDiffusionPipeline), or null without one.</summary>
    public string? PipelineClass { get; init; }

    /// <summary>
    /// localdiffusion.json in the folder, when present: the generation defaults and family hints a model card gives
    /// (e.g. SD-Turbo: <c>{"distillation": "turbo", "steps": 1, "guidance_scale": 0}</c>).
    /// </summary>
    public FolderDefaults? Defaults { get; init; }

    /// <summary>model_index.json lists a text_encoder_2, or the folder has one (SDXL).</summary>
    public bool HasTextEncoder2 { get; init; }

    /// <summary>tokenizer_2/ when present (SDXL's OpenCLIP tokenizer).</summary>
    public string? Tokenizer2Directory { get; init; }

    /// <summary>text_encoder_2/model.onnx when present (SDXL's second text encoder, with the pooled projection).</summary>
    public string? TextEncoder2Path { get; init; }

    /// <summary>
    /// model_index.json's <c>force_zeros_for_empty_prompt</c> (SDXL; true when absent, as diffusers' default): an empty
    /// negative prompt conditions on zeros instead of the encoded empty string.
    /// </summary>
    public bool ForceZerosForEmptyPrompt { get; init; } = true;

    /// <summary>
    /// An SDXL refiner folder (text_encoder_2 without text_encoder, or <c>requires_aesthetics_score</c>): its only
    /// encoder and tokenizer are <see cref="TextEncoderPath"/> and <see cref="TokenizerDirectory"/>.
    /// </summary>
    public bool IsRefiner { get; init; }

    /// <summary>tokenizer/ (vocab.json, merges.txt, …); the refiner's tokenizer_2/.</summary>
    public required string TokenizerDirectory { get; init; }

    /// <summary>text_encoder/model.onnx; the refiner's text_encoder_2/model.onnx.</summary>
    public required string TextEncoderPath { get; init; }

    /// <summary>unet/model.onnx.</summary>
    public required string UnetPath { get; init; }

    /// <summary>vae_decoder/model.onnx.</summary>
    public required string VaeDecoderPath { get; init; }

    /// <summary>vae_encoder/model.onnx when present (img2img and inpainting need it).</summary>
    public string? VaeEncoderPath { get; init; }

    /// <summary>scheduler/scheduler_config.json when present.</summary>
    public string? SchedulerConfigPath { get; init; }

    /// <summary>
    /// The VAE latent scaling factor from the VAE's config.json, or null when no config states it (Olive's exports
    /// ship none); <see cref="ModelFamily.VaeScalingFactor"/> then gives the family's.
    /// </summary>
    public float? VaeScalingFactor { get; init; }

    /// <summary>The UNet's <c>sample_size</c> (latent side) from unet/config.json, when present.</summary>
    public int? UnetSampleSize { get; init; }

    // Every published VAE lies well inside these (0.13025 … 1.5305); outside them the latents are scaled into NaN or grey.
    private static readonly (double Min, double Max) ScalingFactorRange = (1e-3, 1e3);

    // Latent sides up to 4096 px / 8.
    private static readonly (double Min, double Max) SampleSizeRange = (1, 512);

    private static readonly (double Min, double Max) InChannelsRange = (1, 64);
    /// <summary>The UNet's <c>in_channels</c> from unet/config.json (9 for inpainting UNets), when present.</summary>
    public int? UnetInChannels { get; init; }

    /// <summary>SD 1.x/2.x's VAE scaling factor, used when no VAE config says otherwise.</summary>
    public const float DefaultVaeScalingFactor = 0.18215f;

    /// <summary>SDXL's VAE scaling factor (stable-diffusion-xl-base-1.0's vae/config.json), for SDXL exports without a VAE config.</summary>
    public const float SdxlVaeScalingFactor = 0.13025f;

    /// <summary>Finds the components of the model in <paramref name="root"/>; errors name the missing file.</summary>
    public static ModelFolder Open(string root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var full = Path.GetFullPath(root);
        if (File.Exists(full))
            throw new ModelLoadException(full, Path.GetExtension(full).ToLowerInvariant() switch
            {
                ".safetensors" or ".ckpt" or ".pt" or ".bin" =>
                    "this is a single weights file (a checkpoint or a LoRA); LocalDiffusion loads diffusers/optimum ONNX model folders and does not apply LoRA files.",
                ".onnx" => "this is one ONNX file; pass the model folder that holds unet/, text_encoder/, vae_decoder/ and tokenizer/.",
                _ => "this is a file; a model folder was expected.",
            });
        if (!Directory.Exists(full))
            throw new ModelLoadException(full, "model folder not found: a folder with model_index.json, tokenizer/, text_encoder/, unet/ and vae_decoder/ was expected.");

        var indexPath = Path.Combine(full, "model_index.json");
        string? pipelineClass = null;
        var hasTextEncoder2 = false;
        var forceZeros = true;
        var aestheticScore = false;
        if (File.Exists(indexPath))
        {
            using var index = ReadJson(indexPath);
            pipelineClass = index.RootElement.TryGetProperty("_class_name", out var cls) && cls.ValueKind == JsonValueKind.String
                ? cls.GetString() : null;
            // diffusers lists a component the pipeline does without as [null, null]: absent.
            hasTextEncoder2 = index.RootElement.TryGetProperty("text_encoder_2", out var te2)
                && !(te2.ValueKind == JsonValueKind.Null || (te2.ValueKind == JsonValueKind.Array && te2.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Null)));
            forceZeros = !index.RootElement.TryGetProperty("force_zeros_for_empty_prompt", out var fz) || fz.ValueKind != JsonValueKind.False;
            aestheticScore = index.RootElement.TryGetProperty("requires_aesthetics_score", out var ras) && ras.ValueKind == JsonValueKind.True;
        }
        else if (!Directory.Exists(Path.Combine(full, "unet")))
        {
            throw new ModelLoadException(indexPath, "file not found, and there is no unet/ folder either: this does not look like a diffusers/optimum ONNX model folder.");
        }

        hasTextEncoder2 |= Directory.Exists(Path.Combine(full, "text_encoder_2"));
        // The refiner has text_encoder_2 and tokenizer_2 alone: they are its (only) encoder and tokenizer.
        var refiner = hasTextEncoder2 && (aestheticScore || !Directory.Exists(Path.Combine(full, "text_encoder")));
        var tokenizer = Path.Combine(full, refiner ? "tokenizer_2" : "tokenizer");
        if (!Directory.Exists(tokenizer))
            throw new ModelLoadException(tokenizer, "folder not found: the CLIP tokenizer (vocab.json, merges.txt) was expected here.");

        var vaeEncoder = Path.Combine(full, "vae_encoder", "model.onnx");
        var scheduler = Path.Combine(full, "scheduler", "scheduler_config.json");
        return new ModelFolder
        {
            Root = full,
            PipelineClass = pipelineClass,
            Defaults = ReadDefaults(Path.Combine(full, FolderDefaults.FileName)),
            HasTextEncoder2 = hasTextEncoder2,
            Tokenizer2Directory = Directory.Exists(Path.Combine(full, "tokenizer_2")) ? Path.Combine(full, "tokenizer_2") : null,
            TextEncoder2Path = File.Exists(Path.Combine(full, "text_encoder_2", "model.onnx")) ? Path.Combine(full, "text_encoder_2", "model.onnx") : null,
            ForceZerosForEmptyPrompt = forceZeros,
            TokenizerDirectory = tokenizer,
            TextEncoderPath = RequireModel(full, refiner ? "text_encoder_2" : "text_encoder"),
            IsRefiner = refiner,
            UnetPath = RequireModel(full, "unet"),
            VaeDecoderPath = RequireModel(full, "vae_decoder"),
            VaeEncoderPath = File.Exists(vaeEncoder) ? vaeEncoder : null,
            SchedulerConfigPath = File.Exists(scheduler) ? scheduler : null,
            VaeScalingFactor = ReadNumber(full, ["vae_decoder", "vae"], "scaling_factor", ScalingFactorRange,
                "a positive number such as 0.18215 (SD 1.x/2.x) or 0.13025 (SDXL)") is { } sf ? (float)sf : null,
            UnetSampleSize = ReadNumber(full, ["unet"], "sample_size", SampleSizeRange,
                "the latent side, a whole number such as 64 (SD 1.x: 512 px) or 128 (SDXL)", wholeNumber: true) is { } size ? (int)size : null,
            UnetInChannels = ReadNumber(full, ["unet"], "in_channels", InChannelsRange,
                "the UNet's input channels, 4 (text-to-image) or 9 (inpainting)", wholeNumber: true) is { } channels ? (int)channels : null,
        };
    }

    private static FolderDefaults? ReadDefaults(string path)
    {
        if (!File.Exists(path)) return null;
        using var json = ReadJson(path);
        var root = json.RootElement;
        string? distillation = null;
        if (root.TryGetProperty("distillation", out var d))
        {
            distillation = d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            if (distillation is not ("none" or "turbo" or "lcm"))
                throw new ModelLoadException(path, $"\"distillation\" is {d.GetRawText()}; expected \"none\", \"turbo\" or \"lcm\".");
        }
        int? steps = null;
        if (root.TryGetProperty("steps", out var st))
        {
            if (st.ValueKind != JsonValueKind.Number || !st.TryGetInt32(out var value) || value is < 1 or > 1000)
                throw new ModelLoadException(path, $"\"steps\" is {st.GetRawText()}; expected a whole number from 1 to 1000.");
            steps = value;
        }
        float? guidance = null;
        if (root.TryGetProperty("guidance_scale", out var g))
        {
            if (g.ValueKind != JsonValueKind.Number || !g.TryGetDouble(out var value) || !double.IsFinite(value) || value is < 0 or > 100)
                throw new ModelLoadException(path, $"\"guidance_scale\" is {g.GetRawText()}; expected a number from 0 to 100.");
            guidance = (float)value;
        }
        return new FolderDefaults(distillation, steps, guidance);
    }

    private static string RequireModel(string root, string component)
    {
        var path = Path.Combine(root, component, "model.onnx");
        if (!File.Exists(path))
            throw new ModelLoadException(path, $"file not found: the {component} ONNX model was expected here.");
        return path;
    }

    // Optimum writes config.json beside each component; diffusers' script writes none.
    private static double? ReadNumber(string root, string[] components, string key, (double Min, double Max) range, string expected,
        bool wholeNumber = false)
    {
        foreach (var component in components)
        {
            var path = Path.Combine(root, component, "config.json");
            if (File.Exists(path) && ReadNumber(path, key, range, expected, wholeNumber) is { } value) return value;
        }
        return null;
    }

    /// <summary>The VAE scaling factor a VAE's config.json states, or null when it states none.</summary>
    /// <exception cref="ModelLoadException">The value is out of range or the file is not JSON.</exception>
    internal static float? ReadVaeScalingFactor(string configPath) =>
        ReadNumber(configPath, "scaling_factor", ScalingFactorRange, "a positive number such as 0.18215 (SD 1.x/2.x) or 0.13025 (SDXL)") is { } sf
            ? (float)sf : null;

    private static double? ReadNumber(string path, string key, (double Min, double Max) range, string expected, bool wholeNumber = false)
    {
        using var config = ReadJson(path);
        if (!config.RootElement.TryGetProperty(key, out var value)) return null;
        // sample_size may be a list [h, w]; take the height.
        var number = value.ValueKind == JsonValueKind.Array && value.GetArrayLength() > 0 ? value[0] : value;
        if (number.ValueKind != JsonValueKind.Number || !number.TryGetDouble(out var result)
            || !double.IsFinite(result) || result < range.Min || result > range.Max || (wholeNumber && result != Math.Floor(result)))
            throw new ModelLoadException(path,
                $"\"{key}\" is {value.GetRawText()}; expected {expected} (between {range.Min.ToString(CultureInfo.InvariantCulture)} and {range.Max.ToString(CultureInfo.InvariantCulture)}).");
        return result;
    }

    private static JsonDocument ReadJson(string path)
    {
        var text = File.ReadAllText(path);
        if (text.StartsWith("version https://git-lfs", StringComparison.Ordinal))
            throw new ModelLoadException(path, "this is a Git LFS pointer, not the file: run git lfs pull.");
        try
        {
            var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw new ModelLoadException(path, "a JSON object was expected.");
            }
            return doc;
        }
        catch (JsonException e)
        {
            throw new ModelLoadException(path, $"invalid JSON ({e.Message}).", e);
        }
    }
}
