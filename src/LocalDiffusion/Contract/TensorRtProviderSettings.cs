using System.Globalization;
using LocalDiffusion.Errors;

namespace LocalDiffusion;

/// <summary>
/// Options of ONNX Runtime's TensorRT execution provider (applied through <c>OrtTensorRTProviderOptions</c>).
/// Engines and timing caches are kept in the cache folder (<see cref="PipelineOptions.CacheDirectory"/>, sub-folder
/// <c>tensorrt</c>) so that only the first start builds them (minutes); optimisation profiles cover the image sizes
/// the user names, so no size in that range rebuilds an engine.
/// </summary>
public sealed record TensorRtProviderSettings
{
    /// <summary>Build fp16 engines (<c>trt_fp16_enable</c>); default true (SD's UNet is fine in fp16).</summary>
    public bool Fp16 { get; init; } = true;

    /// <summary>Keep built engines in the cache folder (<c>trt_engine_cache_enable</c>); default true.</summary>
    public bool EngineCache { get; init; } = true;

    /// <summary>Keep TensorRT's kernel timing cache in the cache folder (<c>trt_timing_cache_enable</c>); default true.</summary>
    public bool TimingCache { get; init; } = true;

    /// <summary>Image sizes (width, height) the optimisation profile spans: min of them, max of them, the first as
    /// the optimum. Empty: no explicit profile (TensorRT rebuilds when a new shape arrives).</summary>
    public IReadOnlyList<(int Width, int Height)> ProfileSizes { get; init; } = [];

    /// <summary>Largest batch the profile covers (a CFG pair is 2); default 2.</summary>
    public int MaxBatch { get; init; } = 2;

    private const string Field = "TensorRT";

    /// <summary>Parses <c>fp16=1,engine_cache=1,timing_cache=1,sizes=512x512;768x768,max_batch=2</c>.</summary>
    /// <exception cref="ArgumentException">An unknown key or a bad value, named in the message.</exception>
    public static TensorRtProviderSettings Parse(string text)
    {
        var settings = new TensorRtProviderSettings();
        foreach (var (key, value) in ProviderSettingsText.Pairs(text, Field))
        {
            settings = key switch
            {
                "fp16" => settings with { Fp16 = ProviderSettingsText.Bool(value, Field, key) },
                "engine_cache" => settings with { EngineCache = ProviderSettingsText.Bool(value, Field, key) },
                "timing_cache" => settings with { TimingCache = ProviderSettingsText.Bool(value, Field, key) },
                "sizes" => settings with { ProfileSizes = ParseSizes(value) },
                "max_batch" => settings with
                {
                    MaxBatch = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var b) && b >= 1
                        ? b : throw new InvalidRequestException(Field, value, "a positive integer", name => $"{name}: max_batch={value} is not a positive integer."),
                },
                _ => throw new InvalidRequestException(Field, key, "fp16, engine_cache, timing_cache, sizes or max_batch",
                    name => $"{name}: '{key}' is not a TensorRT option this engine sets (fp16, engine_cache, timing_cache, sizes, max_batch)."),
            };
        }
        settings.Validate();
        return settings;
    }

    /// <summary>Checks the values; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (MaxBatch < 1) throw new InvalidRequestException(Field, MaxBatch, "at least 1", name => $"{name}: max_batch (MaxBatch) is {MaxBatch}; it must be at least 1.");
        foreach (var (w, h) in ProfileSizes)
        {
            if (w < 8 || h < 8 || w % 8 != 0 || h % 8 != 0)
                throw new InvalidRequestException(Field, $"{w}x{h}", "positive multiples of 8", name => $"{name}: profile size {w}x{h}: sides must be positive multiples of 8.");
        }
    }

    /// <summary>
    /// The provider options for the component <paramref name="component"/> (the model file's folder name: unet,
    /// text_encoder, vae_decoder, vae_encoder) on GPU <paramref name="deviceId"/>, with caches under
    /// <paramref name="cacheFolder"/>; <paramref name="textWidth"/> is the UNet's encoder_hidden_states width.
    /// </summary>
    public IReadOnlyDictionary<string, string> ToProviderOptions(int deviceId, string component, string cacheFolder, int textWidth = 768)
    {
        var o = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["device_id"] = deviceId.ToString(CultureInfo.InvariantCulture),
            ["trt_fp16_enable"] = Fp16 ? "1" : "0",
            ["trt_engine_cache_enable"] = EngineCache ? "1" : "0",
            ["trt_timing_cache_enable"] = TimingCache ? "1" : "0",
        };
        if (EngineCache) o["trt_engine_cache_path"] = cacheFolder;
        if (TimingCache) o["trt_timing_cache_path"] = cacheFolder;
        if (ProfileSizes.Count > 0 && ProfileShapes(component, textWidth) is { } shapes)
        {
            o["trt_profile_min_shapes"] = shapes.Min;
            o["trt_profile_opt_shapes"] = shapes.Opt;
            o["trt_profile_max_shapes"] = shapes.Max;
        }
        return o;
    }

    // The dynamic inputs of the diffusers/optimum export of each component (TensorRT needs every one of them in a
    // profile). Latents are 1/8 of the image; the CFG pair runs as batch 2.
    private (string Min, string Opt, string Max)? ProfileShapes(string component, int textWidth)
    {
        var minW = ProfileSizes.Min(s => s.Width); var minH = ProfileSizes.Min(s => s.Height);
        var maxW = ProfileSizes.Max(s => s.Width); var maxH = ProfileSizes.Max(s => s.Height);
        var (optW, optH) = ProfileSizes[0];
        var optBatch = Math.Min(2, MaxBatch);
        string Unet(int b, int w, int h) => $"sample:{b}x4x{h / 8}x{w / 8},timestep:{b},encoder_hidden_states:{b}x77x{textWidth}";
        return component switch
        {
            "unet" => (Unet(1, minW, minH), Unet(optBatch, optW, optH), Unet(MaxBatch, maxW, maxH)),
            "text_encoder" => ("input_ids:1x77", $"input_ids:{optBatch}x77", $"input_ids:{MaxBatch}x77"),
            "vae_decoder" => ($"latent_sample:1x4x{minH / 8}x{minW / 8}", $"latent_sample:1x4x{optH / 8}x{optW / 8}", $"latent_sample:{MaxBatch}x4x{maxH / 8}x{maxW / 8}"),
            "vae_encoder" => ($"sample:1x3x{minH}x{minW}", $"sample:1x3x{optH}x{optW}", $"sample:{MaxBatch}x3x{maxH}x{maxW}"),
            _ => null,
        };
    }

    private static List<(int, int)> ParseSizes(string value)
    {
        var sizes = new List<(int, int)>();
        foreach (var item in value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = item.ToLowerInvariant().Split('x');
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var w)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var h))
                throw new InvalidRequestException(Field, item, "WIDTHxHEIGHT", name => $"{name}: size '{item}' is not WIDTHxHEIGHT (sizes=512x512;768x768).");
            sizes.Add((w, h));
        }
        return sizes;
    }
}
