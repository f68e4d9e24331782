using LocalDiffusion.Errors;

namespace LocalDiffusion.Imaging;

/// <summary>
/// Outpainting as inpainting: the picture is padded and the padding is the region to paint. Padding pixels repeat the
/// nearest edge pixel (a start the VAE encodes sensibly, like AUTOMATIC1111's "fill"); the mask is white there.
/// </summary>
public static class Outpainting
{
    /// <summary>
    /// The padded picture and its mask, for <see cref="GenerationRequest.InitImage"/> and <see cref="GenerationRequest.MaskImage"/>
    /// (with Width/Height left null the generation takes the padded size).
    /// </summary>
    /// <exception cref="ArgumentException">A margin is negative, all are 0, or the padded size is not a multiple of 8 or exceeds <see cref="RequestLimits.MaxSide"/>.</exception>
    public static (InitImage Image, InitImage Mask) Pad(InitImage image, int left, int top, int right, int bottom)
    {
        ArgumentNullException.ThrowIfNull(image);
        foreach (var (name, value) in new[] { (nameof(left), left), (nameof(top), top), (nameof(right), right), (nameof(bottom), bottom) })
            if (value is < 0 or > 4096)
                throw new InvalidRequestException(name, value, null, called => $"Outpainting margin {called} must be between 0 and 4096 pixels.");
        if (left + top + right + bottom == 0)
            throw new InvalidRequestException(nameof(left), null, null, "Outpainting needs at least one margin above 0.");
        int width = image.Width + left + right, height = image.Height + top + bottom;
        // Checked here, where the margins are known: the generation would otherwise blame a Width/Height nobody typed.
        if (width > RequestLimits.MaxSide || height > RequestLimits.MaxSide)
            throw new InvalidRequestException(width > RequestLimits.MaxSide ? nameof(right) : nameof(bottom), $"{width}x{height}", $"sides of at most {RequestLimits.MaxSide}", _ => $"The padded picture would be {width}x{height}; sides may be at most {RequestLimits.MaxSide} pixels (the picture is {image.Width}x{image.Height}).");
        if (width % 8 != 0 || height % 8 != 0)
            throw new InvalidRequestException(width % 8 != 0 ? nameof(right) : nameof(bottom), $"{width}x{height}", "multiples of 8", _ => $"The padded picture would be {width}x{height}; choose margins that make both sides multiples of 8 (the picture is {image.Width}x{image.Height}).");

        var rgb = new byte[width * height * 3];
        var mask = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            var sy = Math.Clamp(y - top, 0, image.Height - 1);
            for (var x = 0; x < width; x++)
            {
                var sx = Math.Clamp(x - left, 0, image.Width - 1);
                image.Rgb.AsSpan((sy * image.Width + sx) * 3, 3).CopyTo(rgb.AsSpan((y * width + x) * 3, 3));
                var inside = x >= left && x < left + image.Width && y >= top && y < top + image.Height;
                if (!inside)
                    mask.AsSpan((y * width + x) * 3, 3).Fill(255);
            }
        }
        return (new InitImage(width, height, rgb), new InitImage(width, height, mask));
    }

    /// <summary>Parses CLI margins such as <c>left=32,right=32</c> (sides: left, top, right, bottom; unnamed ones are 0).</summary>
    /// <exception cref="ArgumentException">An entry is not side=pixels, or a side is given twice.</exception>
    public static (int Left, int Top, int Right, int Bottom) ParseMargins(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int left = 0, top = 0, right = 0, bottom = 0;
        // left=32,left=64 is a typo for another side; keeping the last one would pad the wrong picture.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var pieces = part.Split('=', 2, StringSplitOptions.TrimEntries);
            if (pieces.Length != 2 || !int.TryParse(pieces[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pixels))
                throw new InvalidRequestException("Outpaint", text, "side=pixels", called => $"{called}: \"{part}\" is not side=pixels (e.g. left=64,right=64).");
            var side = pieces[0].ToLowerInvariant();
            if (side is "left" or "top" or "right" or "bottom" && !seen.Add(side))
                throw new InvalidRequestException("Outpaint", text, "each side once", called => $"{called}: {side} is given twice in \"{text}\"; give each side once.");
            switch (side)
            {
                case "left": left = pixels; break;
                case "top": top = pixels; break;
                case "right": right = pixels; break;
                case "bottom": bottom = pixels; break;
                default: throw new InvalidRequestException("Outpaint", text, "left, top, right or bottom", called => $"{called}: unknown side \"{pieces[0]}\" (left, top, right, bottom).");
            }
        }
        return (left, top, right, bottom);
    }
}
