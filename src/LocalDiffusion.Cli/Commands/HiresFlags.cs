using LocalDiffusion.Pipeline;
using LocalDiffusion.Errors;
using System.CommandLine;
using LocalDiffusion.Upscaling;

namespace LocalDiffusion.Cli.Commands;

/// <summary>
/// <c>generate</c>'s hires fix, with AUTOMATIC1111's semantics (<c>enable_hr</c>): <c>--hires-scale F</c> or
/// <c>--hires-size WxH</c> turns it on; the first pass's picture is enlarged by <c>--hires-upscaler</c> and redrawn by an
/// img2img pass of <c>--hires-steps</c> at <c>--hires-strength</c>.
/// </summary>
internal sealed class HiresFlags
{
    private readonly Option<double?> _scale = new("--hires-scale") { Description = "Hires fix: enlarge the first pass this many times (A1111's hr_scale, e.g. 2) and redraw it." };
    private readonly Option<string?> _size = new("--hires-size") { Description = "Hires fix: enlarge the first pass to WxH (A1111's hr_resize_x/y; 0 for one side keeps the aspect ratio)." };
    private readonly Option<string?> _upscaler = new("--hires-upscaler") { Description = "How the first pass is enlarged: Latent (default), Latent (antialiased|bicubic|bicubic antialiased|nearest|nearest-exact), None, Lanczos, Nearest, or an ESRGAN-family .onnx file." };
    private readonly Option<int?> _steps = new("--hires-steps") { Description = "Steps of the hires pass (A1111's hr_second_pass_steps; default: the first pass's --steps)." };
    private readonly Option<float?> _strength = new("--hires-strength") { Description = "Denoising strength of the hires pass, in (0, 1] (default 0.7, A1111's)." };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _scale, _size, _upscaler, _steps, _strength })
            command.Options.Add(option);
    }

    /// <summary>The hires options, or null when neither --hires-scale nor --hires-size was given; the model file is not opened yet.</summary>
    public (HiresOptions Options, string? ModelPath)? Read(ParseResult parse)
    {
        var scale = parse.GetValue(_scale);
        var size = parse.GetValue(_size);
        if (scale is null && size is null)
        {
            foreach (var (flag, given) in new (string, bool)[] { ("--hires-upscaler", parse.GetValue(_upscaler) is not null), ("--hires-steps", parse.GetValue(_steps) is not null), ("--hires-strength", parse.GetValue(_strength) is not null) })
                if (given) throw new InvalidRequestException(flag, null, null, called => $"{called} needs --hires-scale or --hires-size (which turn the hires fix on).");
            return null;
        }
        if (scale is not null && size is not null)
            throw new InvalidRequestException("--hires-size", null, null, called => $"--hires-scale and {called} both give the hires size; use one.");
        var (width, height) = size is null ? (0, 0) : ParseSize(size);
        var upscaler = parse.GetValue(_upscaler);
        string? modelPath = null;
        if (upscaler is not null && !LatentResize.Modes.ContainsKey(upscaler) && !HiresPlan.BuiltInUpscalers.Contains(upscaler))
        {
            if (!File.Exists(upscaler) && !Directory.Exists(upscaler))
                throw new InvalidRequestException("--hires-upscaler", null, null, called => $"{called} '{upscaler}' is neither a built-in upscaler ({string.Join(", ", LatentResize.Modes.Keys.Concat(HiresPlan.BuiltInUpscalers))}) nor an .onnx file or folder.");
            modelPath = upscaler;
        }
        var options = new HiresOptions
        {
            Scale = scale ?? 2,
            ResizeWidth = width,
            ResizeHeight = height,
            Upscaler = upscaler,
            SecondPassSteps = parse.GetValue(_steps) ?? 0,
            Strength = parse.GetValue(_strength) ?? 0.7f,
        };
        return (options, modelPath);
    }

    /// <summary>The engine's plan for the request, its refusals naming the flag; checked before any work.</summary>
    public static void Check(StableDiffusionPipeline pipeline, GenerationRequest request, HiresOptions options)
    {
        try
        {
            HiresFix.Plan(pipeline, request, options);
        }
        catch (InvalidRequestException e) when (e.Culprit.Field is { } field && field.StartsWith("Hires.", StringComparison.Ordinal))
        {
            // The plan's messages describe the value; the flag (from the contract's field table) leads them.
            throw new InvalidRequestException(field, e.Culprit.Value, e.Culprit.Expected, called => $"{called}: {e.Message}", e);
        }
    }

    private static (int Width, int Height) ParseSize(string text)
    {
        if (ValueText.TryParseSize(text, out var w, out var h) && (w > 0 || h > 0))
            return (w, h);
        throw new InvalidRequestException("--hires-size", null, null, called => $"{called} '{text}' is not WxH (e.g. 1024x1024, or 1024x0 to keep the aspect ratio).");
    }
}
