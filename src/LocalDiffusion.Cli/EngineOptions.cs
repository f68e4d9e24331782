using System.CommandLine;
using LocalDiffusion.Onnx;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli;

/// <summary>
/// The ONNX Runtime tuning and GPU provider flags that the commands which load a model share: memory arena,
/// memory patterns, session configuration entries, CUDA and TensorRT provider options.
/// </summary>
internal sealed class EngineOptions
{
    private readonly Option<string?> _cuda = new("--cuda-options")
    {
        Description = "CUDA provider options: gpu_mem_limit=8GB,cudnn_conv_algo_search=exhaustive|heuristic|default,prefer_nhwc=0|1 (docs/gpu.md).",
    };

    private readonly Option<string?> _tensorRt = new("--tensorrt-options")
    {
        Description = "TensorRT provider options: fp16=1,engine_cache=1,timing_cache=1,sizes=512x512;768x768,max_batch=2 (engines kept in the cache folder; docs/gpu.md).",
    };

    private readonly Option<bool> _prepack = new("--prepack-weights")
    {
        Description = "Let ONNX Runtime re-pack MatMul weights when loading (its default; off here: it slows starts and measured no faster steps).",
    };

    private readonly Option<bool> _noArena = new("--no-cpu-arena") { Description = "Turn ONNX Runtime's CPU memory arena off." };

    private readonly Option<string?> _pattern = new Option<string?>("--memory-pattern")
    {
        Description = "ONNX Runtime's memory-pattern planning: on or off (default: off on the CPU, where it made the first two UNet calls slow and raised peak memory; on elsewhere).",
    }.AcceptOnlyFromAmong("on", "off");

    private readonly Option<string?> _extend = new Option<string?>("--arena-extend-strategy")
    {
        Description = "How the CPU arena grows: next_power_of_two (ONNX Runtime's default) or same_as_requested (one shared arena).",
    }.AcceptOnlyFromAmong("next_power_of_two", "same_as_requested");

    private readonly Option<bool> _noFuse = new("--no-fuse-attention")
    {
        Description = "Run the model's attention as exported instead of fusing it into ONNX Runtime's MultiHeadAttention when loading (the default on the CPU and CUDA: faster, less memory at large sizes).",
    };

    private readonly Option<int?> _maxUnetBatch = new("--max-unet-batch")
    {
        Description = "Most rows in one UNet call (default: all, but 1 for SDXL on the CPU; 1: the guidance pair as two calls, as AUTOMATIC1111's --medvram: half the UNet's working memory).",
    };

    private readonly Option<string[]> _config = new("--session-config")
    {
        Description = "An ONNX Runtime session configuration entry KEY=VALUE (repeatable), e.g. session.intra_op.allow_spinning=0.",
    };

    /// <summary>Adds the flags to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _cuda, _tensorRt, _prepack, _noArena, _pattern, _extend, _noFuse, _maxUnetBatch, _config })
            command.Options.Add(option);
    }

    /// <summary><paramref name="options"/> with the flags the user gave; bad values give an <see cref="ArgumentException"/> naming the flag.</summary>
    public PipelineOptions Apply(ParseResult parse, PipelineOptions options)
    {
        Dictionary<string, string>? config = null;
        foreach (var entry in parse.GetValue(_config) ?? [])
        {
            var eq = entry.IndexOf('=');
            if (eq <= 0) throw new InvalidRequestException("--session-config", null, null, called => $"{called} '{entry}' is not KEY=VALUE.");
            (config ??= new(StringComparer.Ordinal))[entry[..eq].Trim()] = entry[(eq + 1)..].Trim();
        }
        if (parse.GetValue(_maxUnetBatch) is < 1 and var rows)
            throw new InvalidRequestException("--max-unet-batch", rows, null, called => $"{called} is {rows}; it must be at least 1.");
        return options with
        {
            Cuda = parse.GetValue(_cuda) is { } cuda ? CudaProviderSettings.Parse(cuda) : null,
            TensorRT = parse.GetValue(_tensorRt) is { } trt ? TensorRtProviderSettings.Parse(trt) : null,
            PrepackWeights = parse.GetValue(_prepack),
            EnableCpuMemArena = parse.GetValue(_noArena) ? false : null,
            EnableMemoryPattern = parse.GetValue(_pattern) switch { "on" => true, "off" => false, _ => null },
            CpuArenaExtendStrategy = parse.GetValue(_extend),
            SessionConfig = config,
            MaxUnetBatch = parse.GetValue(_maxUnetBatch),
            FuseAttention = !parse.GetValue(_noFuse),
        };
    }
}
