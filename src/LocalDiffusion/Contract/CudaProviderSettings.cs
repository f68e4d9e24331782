using System.Globalization;
using LocalDiffusion.Errors;

namespace LocalDiffusion;

/// <summary>
/// Options of ONNX Runtime's CUDA execution provider (applied through <c>OrtCUDAProviderOptions</c>); the GPU
/// ordinal comes from the device string (<c>cuda:1</c>). Null members keep ONNX Runtime's defaults.
/// </summary>
public sealed record CudaProviderSettings
{
    /// <summary>Most bytes the provider's memory arena may hold on the GPU (<c>gpu_mem_limit</c>); null: no limit.</summary>
    public long? GpuMemoryLimitBytes { get; init; }

    /// <summary>How cuDNN picks convolution algorithms (<c>cudnn_conv_algo_search</c>): <c>exhaustive</c> (ONNX Runtime's
    /// default: benchmarks every algorithm once per shape, slow first call), <c>heuristic</c> or <c>default</c>.</summary>
    public string? CudnnConvAlgoSearch { get; init; }

    /// <summary>ONNX Runtime's CUDA graph capture (<c>enable_cuda_graph</c>): only <c>false</c> is accepted. A replayed graph
    /// reads its inputs at the device addresses it was captured with, and the engine's per-step inputs are host tensors
    /// copied to a fresh device buffer at each step, so <c>true</c> would denoise stale latents; it is refused.</summary>
    public bool? EnableCudaGraph { get; init; }

    /// <summary>Run convolutions in NHWC layout (<c>prefer_nhwc</c>): faster on tensor cores, fp16 especially.</summary>
    public bool? PreferNhwc { get; init; }

    private const string Field = "Cuda";
    private static readonly string[] Searches = ["exhaustive", "heuristic", "default"];

    /// <summary>Parses <c>gpu_mem_limit=8GB,cudnn_conv_algo_search=heuristic,enable_cuda_graph=1,prefer_nhwc=1</c>.</summary>
    /// <exception cref="ArgumentException">An unknown key or a bad value, named in the message.</exception>
    public static CudaProviderSettings Parse(string text)
    {
        var settings = new CudaProviderSettings();
        foreach (var (key, value) in ProviderSettingsText.Pairs(text, Field))
        {
            settings = key switch
            {
                "gpu_mem_limit" => settings with { GpuMemoryLimitBytes = ProviderSettingsText.Bytes(value, Field, key) },
                "cudnn_conv_algo_search" => settings with { CudnnConvAlgoSearch = value.ToLowerInvariant() },
                "enable_cuda_graph" => settings with { EnableCudaGraph = ProviderSettingsText.Bool(value, Field, key) },
                "prefer_nhwc" => settings with { PreferNhwc = ProviderSettingsText.Bool(value, Field, key) },
                _ => throw new InvalidRequestException(Field, key, "gpu_mem_limit, cudnn_conv_algo_search, enable_cuda_graph or prefer_nhwc",
                    name => $"{name}: '{key}' is not a CUDA option this engine sets (gpu_mem_limit, cudnn_conv_algo_search, enable_cuda_graph, prefer_nhwc)."),
            };
        }
        settings.Validate();
        return settings;
    }

    /// <summary>Checks the values; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (GpuMemoryLimitBytes is <= 0)
            throw new InvalidRequestException(Field, GpuMemoryLimitBytes, "a positive byte count", name => $"{name}: gpu_mem_limit (GpuMemoryLimitBytes) is {GpuMemoryLimitBytes}; it must be positive.");
        if (CudnnConvAlgoSearch is { } s && !Searches.Contains(s, StringComparer.OrdinalIgnoreCase))
            throw new InvalidRequestException(Field, s, "exhaustive, heuristic or default", name => $"{name}: cudnn_conv_algo_search is '{s}'; use exhaustive, heuristic or default.");
        if (EnableCudaGraph is true)
            throw new InvalidRequestException(Field, "enable_cuda_graph=1", "enable_cuda_graph=0", name => $"{name}: enable_cuda_graph=1 (EnableCudaGraph) is refused: " +
                "a CUDA graph replays its inputs from the device addresses it was captured with, but this engine copies each step's " +
                "latents from host memory into a new device buffer, so the replay would read stale latents. Leave it off (docs/gpu.md).");
    }

    /// <summary>The provider options as ONNX Runtime's keys and values, for GPU <paramref name="deviceId"/>.</summary>
    public IReadOnlyDictionary<string, string> ToProviderOptions(int deviceId)
    {
        var o = new Dictionary<string, string>(StringComparer.Ordinal) { ["device_id"] = deviceId.ToString(CultureInfo.InvariantCulture) };
        if (GpuMemoryLimitBytes is { } limit) o["gpu_mem_limit"] = limit.ToString(CultureInfo.InvariantCulture);
        if (CudnnConvAlgoSearch is { } search) o["cudnn_conv_algo_search"] = search.ToUpperInvariant() switch
        {
            "EXHAUSTIVE" => "EXHAUSTIVE",
            "HEURISTIC" => "HEURISTIC",
            _ => "DEFAULT",
        };
        if (EnableCudaGraph is { } graph) o["enable_cuda_graph"] = graph ? "1" : "0";
        if (PreferNhwc is { } nhwc) o["prefer_nhwc"] = nhwc ? "1" : "0";
        return o;
    }
}
