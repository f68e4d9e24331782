using System.CommandLine;
using LocalDiffusion.Imaging;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>generate</c>'s img2img, inpainting and eta options, read (files loaded) before the model is.</summary>
internal sealed class ImageOptions
{
    private readonly Option<string?> _initImage = new("--init-image") { Description = "img2img: start from this picture (PNG, JPEG, …); it is resized to --width/--height when given, else its size rounded down to a multiple of 8 is used." };
    private readonly Option<float?> _strength = new("--strength") { Description = "img2img: share of the schedule that runs, in (0, 1]; higher changes the picture more (default 0.8; 1 with --mask)." };
    private readonly Option<string?> _mask = new("--mask") { Description = "Inpainting: mask picture, white = repaint, black = keep (needs --init-image)." };
    private readonly Option<float> _maskBlur = new("--mask-blur") { Description = "Inpainting: Gaussian blur of the mask in pixels (soft edge); 0 = hard edge.", DefaultValueFactory = _ => 0f };
    private readonly Option<string?> _outpaint = new("--outpaint") { Description = "Outpainting: pad --init-image by side=pixels margins (e.g. left=64,right=64) and paint the padding (edge-filled start)." };
    private readonly Option<float?> _eta = new("--eta") { Description = "DDIM's eta / TCD's gamma (fresh noise per step); default 0 as in diffusers." };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(_initImage);
        command.Options.Add(_strength);
        command.Options.Add(_mask);
        command.Options.Add(_maskBlur);
        command.Options.Add(_outpaint);
        command.Options.Add(_eta);
    }

    /// <summary>The files these options read, to keep outputs from overwriting them.</summary>
    public IReadOnlyList<(string Flag, string Path)> Inputs(ParseResult parse) =>
        new[] { ("--init-image", parse.GetValue(_initImage)), ("--mask", parse.GetValue(_mask)) }
            .Where(i => i.Item2 is not null).Select(i => (i.Item1, i.Item2!)).ToList();

    private static InitImage Load(string flag, string path)
    {
        try
        {
            return InitImage.FromPng(path);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw new InvalidRequestException(flag, null, null, called => $"{called}: {e.Message}", e);
        }
    }

    // A mask drawn as transparency over one flat colour (how editors and OpenAI's edits API mark the area to repaint)
    // carries nothing in its RGB: its transparent pixels are the mask (white = repaint), not a black mask that repaints
    // nothing. A mask whose RGB varies is read from its RGB, as before.
    private static InitImage AlphaOrRgbMask(string path, InitImage rgb)
    {
        if (rgb.Rgb.AsSpan().IndexOfAnyExcept(rgb.Rgb[0]) >= 0) return rgb;
        return InitImage.Decode(File.ReadAllBytes(path), path).TransparentMask ?? rgb;
    }

    /// <summary>Loads the pictures the options name and returns <paramref name="request"/> with them and the other settings.</summary>
    public Func<GenerationRequest, GenerationRequest> Read(ParseResult parse)
    {
        var init = parse.GetValue(_initImage) is { } initPath ? Load("--init-image", initPath) : null;
        var mask = parse.GetValue(_mask) is { } maskPath ? AlphaOrRgbMask(maskPath, Load("--mask", maskPath)) : null;
        if (mask is not null && init is null)
            throw new InvalidRequestException("--mask", null, null, called => $"{called} needs --init-image (the picture to inpaint).");
        if (parse.GetValue(_outpaint) is { } margins)
        {
            if (init is null || mask is not null)
                throw new InvalidRequestException("--outpaint", null, null, called => $"{called} needs --init-image and makes its own mask (do not give --mask).");
            var (left, top, right, bottom) = Outpainting.ParseMargins(margins);
            try
            {
                (init, mask) = Outpainting.Pad(init, left, top, right, bottom);
            }
            catch (ArgumentException e)
            {
                // Pad names its own parameters (left, right, …); the user typed --outpaint.
                throw new InvalidRequestException("--outpaint", margins, null, called => $"{called} {margins}: {RequestFields.MessageFor(e, FrontEnd.Library)}", e);
            }
        }
        var strength = parse.GetValue(_strength);
        var blur = parse.GetValue(_maskBlur);
        // Settings that only shape img2img/inpainting would otherwise be dropped without a word: the user meant something.
        if (strength is not null && init is null)
            throw new InvalidRequestException("--strength", null, null, called => $"{called} needs --init-image (the picture img2img starts from).");
        if (mask is null && parse.GetResult(_maskBlur) is { Implicit: false })
            throw new InvalidRequestException("--mask-blur", null, null, called => $"{called} needs --mask or --outpaint (the mask it softens).");
        var eta = parse.GetValue(_eta);
        return request => request with { InitImage = init, Strength = strength, MaskImage = mask, MaskBlur = blur, Eta = eta };
    }
}
