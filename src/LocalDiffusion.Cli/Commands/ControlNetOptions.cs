using System.CommandLine;
using LocalDiffusion.ControlNet;
using LocalDiffusion.Imaging;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary>
/// <c>generate</c>'s ControlNet options: <c>--controlnet DIR[:SCALE]</c> (repeatable, one unit each) with
/// <c>--control-image</c>, <c>--control-preprocessor</c>, <c>--control-start</c> and <c>--control-end</c> paired with
/// them in order (one value serves every unit), and <c>--guess-mode</c>. Files are read before the model is loaded.
/// </summary>
internal sealed class ControlNetOptions
{
    private readonly Option<string[]> _controlNet = new("--controlnet")
    {
        Description = "Steer the picture with a ControlNet: its folder (model.onnx) or .onnx file, with an optional scale, e.g. --controlnet canny-onnx:0.8; repeatable (the residuals add up). The model's UNet must be exported with ControlNet residual inputs.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private readonly Option<string[]> _image = new("--control-image")
    {
        Description = "The control image of each --controlnet, in order (one image serves all); resized to the output size.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private readonly Option<string[]> _preprocessor = new("--control-preprocessor")
    {
        Description = "What is done to each control image first: none (default; the image is already an edge/depth/pose map) or canny (A1111's 100/200 thresholds); one value serves all.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private readonly Option<float[]> _start = new("--control-start")
    {
        Description = "Fraction of the steps before which each ControlNet is off (default 0); one value serves all.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private readonly Option<float[]> _end = new("--control-end")
    {
        Description = "Fraction of the steps after which each ControlNet is off (default 1); one value serves all.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private readonly Option<bool> _guessMode = new("--guess-mode")
    {
        Description = "diffusers' guess mode (A1111's \"ControlNet is more important\"): the ControlNets see only the prompt's half of classifier-free guidance.",
    };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _controlNet, _image, _preprocessor, _start, _end, _guessMode }) command.Options.Add(option);
    }

    /// <summary>The control images, to keep outputs from overwriting them.</summary>
    public IReadOnlyList<(string Flag, string Path)> Inputs(ParseResult parse) =>
        [.. (parse.GetValue(_image) ?? []).Select(p => ("--control-image", p))];

    /// <summary>Reads the ControlNet paths and control images and returns <paramref name="request"/> with the units.</summary>
    public Func<GenerationRequest, GenerationRequest> Read(ParseResult parse)
    {
        var nets = (parse.GetValue(_controlNet) ?? []).Select(ParseNet).ToList();
        var images = parse.GetValue(_image) ?? [];
        var preprocessors = parse.GetValue(_preprocessor) ?? [];
        var starts = parse.GetValue(_start) ?? [];
        var ends = parse.GetValue(_end) ?? [];
        var guess = parse.GetValue(_guessMode);
        if (nets.Count == 0)
        {
            // Settings that only shape ControlNets would otherwise be dropped without a word.
            foreach (var (flag, given) in new[] { ("--control-image", images.Length > 0), ("--control-preprocessor", preprocessors.Length > 0),
                         ("--control-start", starts.Length > 0), ("--control-end", ends.Length > 0), ("--guess-mode", guess) })
                if (given) throw new InvalidRequestException(flag, null, null, called => $"{called} needs --controlnet (the ControlNet it applies to).");
            return request => request;
        }
        if (images.Length == 0)
            throw new InvalidRequestException("--control-image", null, null, called => $"--controlnet needs {called} (the edge, depth or pose picture that steers it).");
        Paired("--control-image", images.Length, nets.Count);
        Paired("--control-preprocessor", preprocessors.Length, nets.Count);
        Paired("--control-start", starts.Length, nets.Count);
        Paired("--control-end", ends.Length, nets.Count);
        var loaded = images.Distinct().ToDictionary(p => p, Load);
        var units = new List<ControlNetUnit>(nets.Count);
        for (var i = 0; i < nets.Count; i++)
        {
            units.Add(new ControlNetUnit
            {
                ModelPath = nets[i].Path,
                Scale = nets[i].Scale,
                Image = loaded[Pick(images, i)],
                Preprocessor = preprocessors.Length == 0 ? ControlPreprocessor.None : ParsePreprocessor(Pick(preprocessors, i)),
                GuidanceStart = starts.Length == 0 ? 0f : Pick(starts, i),
                GuidanceEnd = ends.Length == 0 ? 1f : Pick(ends, i),
            });
        }
        return request => request with { ControlNets = units, ControlNetGuessMode = guess };
    }

    private static T Pick<T>(T[] values, int i) => values.Length == 1 ? values[0] : values[i];

    private static void Paired(string flag, int given, int nets)
    {
        if (given > 1 && given != nets)
            throw new InvalidRequestException(flag, null, null, called => $"{called} is given {given} times for {nets} --controlnet; give it once (for all) or once per --controlnet, in order.");
    }

    // DIR[:SCALE], scale 1 when none is given.
    internal static (string Path, float Scale) ParseNet(string value)
    {
        var (path, number) = ValueText.SplitPathNumber(value);
        var scale = number ?? 1f;
        if (!Directory.Exists(path) && !File.Exists(path))
            throw new InvalidRequestException("--controlnet", null, null, called => $"{called} {path}: no such folder or .onnx file.");
        return (path, scale);
    }

    private static ControlPreprocessor ParsePreprocessor(string value) => value.ToLowerInvariant() switch
    {
        "none" => ControlPreprocessor.None,
        "canny" => ControlPreprocessor.Canny,
        _ => throw new InvalidRequestException("--control-preprocessor", null, null, called => $"{called} {value}: expected none or canny (other preprocessors, such as depth or openpose, need their own models: make the map elsewhere and pass it with none)."),
    };

    private static InitImage Load(string path)
    {
        try
        {
            return InitImage.FromPng(path);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw new InvalidRequestException("--control-image", null, null, called => $"{called}: {e.Message}", e);
        }
    }
}
