using System.CommandLine;
using System.Globalization;
using LocalDiffusion.Benchmarking;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary>
/// The flags <c>bench pipeline</c> and <c>bench batch</c> share (what <see cref="BenchmarkRunOptions"/> holds): model,
/// size, steps, repeats, device, threads, scheduler, guidance, the JSON report file, the engine options and --low-memory.
/// </summary>
internal sealed class BenchRunFlags
{
    private readonly Option<string?> _model = new("--model", "-m") { Description = $"Model folder. Default: {ModelLocator.DefaultModel}." };
    private readonly Option<string?> _size;
    private readonly Option<int> _steps = new("--steps") { Description = "Denoising steps.", DefaultValueFactory = _ => 20 };
    private readonly Option<int> _repeats;
    private readonly Option<string> _device = new("--device") { Description = "auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml.", DefaultValueFactory = _ => "auto" };
    private readonly Option<int?> _threads = new("--threads") { Description = "CPU threads per operator (default: ONNX Runtime's choice)." };
    private readonly Option<string?> _scheduler = new("--scheduler") { Description = "Sampler id (default: the model's scheduler_config.json)." };
    private readonly Option<float> _guidance = new("--guidance", "--cfg") { Description = "Classifier-free guidance scale.", DefaultValueFactory = _ => 7.5f };
    private readonly Option<string?> _json = new("--json") { Description = "Also write the report as JSON to this file." };
    private readonly Option<bool> _lowMemory = LowMemoryOption.Create("Hold each model only while a stage uses it, as a one-shot generate does (measures the memory saved and the reopening cost of later generations).");
    private readonly EngineOptions _engine = new();

    public BenchRunFlags(string sizeExample, string repeatsDescription)
    {
        _size = new Option<string?>("--size") { Description = $"Image size WxH, e.g. {sizeExample} (default: the model's native size)." };
        _repeats = new Option<int>("--repeats") { Description = repeatsDescription, DefaultValueFactory = _ => 3 };
    }

    /// <summary>The run's flags, in the order help lists them, then the engine's.</summary>
    public void AddRunFlags(Command command)
    {
        foreach (var option in new Option[] { _model, _size, _steps, _repeats, _device, _threads, _scheduler, _guidance, _json })
            command.Options.Add(option);
    }

    /// <summary>The engine options and --low-memory.</summary>
    public void AddEngineFlags(Command command)
    {
        _engine.AddTo(command);
        command.Options.Add(_lowMemory);
    }

    /// <summary>The JSON report path, if one was asked for.</summary>
    public string? JsonPath(ParseResult parse) => parse.GetValue(_json);

    /// <summary><paramref name="options"/> with the flags the user gave; <paramref name="engine"/> adds command-specific engine options.</summary>
    public T Read<T>(ParseResult parse, T options, Func<PipelineOptions, PipelineOptions>? engine = null) where T : BenchmarkRunOptions
    {
        var (width, height) = ParseSize(parse.GetValue(_size));
        var device = parse.GetValue(_device)!;
        var pipeline = new PipelineOptions { Device = device, LowMemory = parse.GetValue(_lowMemory) };
        var read = (T)((BenchmarkRunOptions)options with
        {
            Model = ModelLocator.Resolve(parse.GetValue(_model)),
            Device = device,
            Width = width,
            Height = height,
            Steps = parse.GetValue(_steps),
            Repeats = parse.GetValue(_repeats),
            Scheduler = parse.GetValue(_scheduler),
            GuidanceScale = parse.GetValue(_guidance),
            IntraOpThreads = parse.GetValue(_threads),
            Engine = _engine.Apply(parse, engine?.Invoke(pipeline) ?? pipeline),
        });
        if (read.Steps is < 1 or > 1000) throw new InvalidRequestException("--steps", read.Steps, null, called => $"{called} must be between 1 and 1000.");
        if (read.Repeats < 1) throw new InvalidRequestException("--repeats", read.Repeats, null, called => $"{called} must be at least 1.");
        return read;
    }

    private static (int? Width, int? Height) ParseSize(string? text)
    {
        if (text is null) return (null, null);
        var parts = text.ToLowerInvariant().Split('x');
        if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out var w) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var h))
            return (w, h);
        throw new InvalidRequestException("--size", null, null, called => $"{called} '{text}': expected WIDTHxHEIGHT, e.g. 512x512.");
    }
}
