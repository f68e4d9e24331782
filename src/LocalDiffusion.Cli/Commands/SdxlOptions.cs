using System.CommandLine;
using System.Globalization;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>generate</c>'s SDXL micro-conditioning options (diffusers' original_size, crops_coords_top_left, …).</summary>
internal sealed class SdxlOptions
{
    private readonly Option<string?> _originalSize = new("--original-size") { Description = "SDXL: the size (WxH) the picture should look as if it had before resizing (default: the image's size)." };
    private readonly Option<string?> _crop = new("--crop") { Description = "SDXL: crop coordinates TOP,LEFT in pixels the picture should look cropped at (default 0,0: centred)." };
    private readonly Option<string?> _targetSize = new("--target-size") { Description = "SDXL base: target size WxH (default: the image's size)." };
    private readonly Option<string?> _negativeOriginalSize = new("--negative-original-size") { Description = "SDXL: --original-size for the negative prompt (default: --original-size)." };
    private readonly Option<string?> _negativeCrop = new("--negative-crop") { Description = "SDXL: --crop for the negative prompt (default: --crop)." };
    private readonly Option<string?> _negativeTargetSize = new("--negative-target-size") { Description = "SDXL base: --target-size for the negative prompt (default: --target-size)." };
    private readonly Option<float?> _aestheticScore = new("--aesthetic-score") { Description = "SDXL refiner: aesthetic score the prompt is conditioned on (default 6)." };
    private readonly Option<float?> _negativeAestheticScore = new("--negative-aesthetic-score") { Description = "SDXL refiner: aesthetic score of the negative prompt (default 2.5)." };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _originalSize, _crop, _targetSize, _negativeOriginalSize, _negativeCrop, _negativeTargetSize, _aestheticScore, _negativeAestheticScore })
            command.Options.Add(option);
    }

    /// <summary>Reads the options (refusing unreadable values, naming the flag) and returns the request with them.</summary>
    public Func<GenerationRequest, GenerationRequest> Read(ParseResult parse)
    {
        var originalSize = Size(parse, _originalSize);
        var crop = Crop(parse, _crop);
        var targetSize = Size(parse, _targetSize);
        var negativeOriginalSize = Size(parse, _negativeOriginalSize);
        var negativeCrop = Crop(parse, _negativeCrop);
        var negativeTargetSize = Size(parse, _negativeTargetSize);
        var aestheticScore = parse.GetValue(_aestheticScore);
        var negativeAestheticScore = parse.GetValue(_negativeAestheticScore);
        return request => request with
        {
            OriginalSize = originalSize, CropsCoordsTopLeft = crop, TargetSize = targetSize,
            NegativeOriginalSize = negativeOriginalSize, NegativeCropsCoordsTopLeft = negativeCrop, NegativeTargetSize = negativeTargetSize,
            AestheticScore = aestheticScore, NegativeAestheticScore = negativeAestheticScore,
        };
    }

    private static PixelSize? Size(ParseResult parse, Option<string?> option)
    {
        if (parse.GetValue(option) is not { } text) return null;
        if (ValueText.TryParseSize(text, out var w, out var h))
            return new PixelSize(w, h);
        throw new InvalidRequestException(option.Name, null, null, called => $"{called} is \"{text}\"; write WIDTHxHEIGHT in pixels, e.g. 1024x1024.");
    }

    private static CropCoordinates? Crop(ParseResult parse, Option<string?> option)
    {
        if (parse.GetValue(option) is not { } text) return null;
        var parts = text.Split(',');
        if (parts.Length == 2 && int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var top)
            && int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var left))
            return new CropCoordinates(top, left);
        throw new InvalidRequestException(option.Name, null, null, called => $"{called} is \"{text}\"; write TOP,LEFT in pixels, e.g. 0,0.");
    }
}
