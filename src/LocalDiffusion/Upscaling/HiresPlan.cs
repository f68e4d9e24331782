using System.Globalization;
using System.Text.Json;
using LocalDiffusion.Imaging;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Upscaling;

/// <summary>
/// A checked hires fix for one first pass: the enlarged size, how to enlarge, the second pass's steps, and the fields
/// AUTOMATIC1111 adds to the infotext. Made by <see cref="Create"/>, which refuses what cannot run before any work.
/// </summary>
public sealed class HiresPlan
{
    /// <summary>The image upscalers A1111 has built in besides its latent modes.</summary>
    public static IReadOnlyList<string> BuiltInUpscalers { get; } = ["None", "Lanczos", "Nearest"];

    private HiresPlan(HiresOptions options, int width, int height, LatentUpscaleMode? latent, int secondSteps, IReadOnlyDictionary<string, object> parameters)
    {
        (Options, Width, Height, Latent, SecondSteps, Parameters) = (options, width, height, latent, secondSteps, parameters);
        EngineSteps = StretchedSteps(secondSteps, options.Strength);
    }

    /// <summary>The options the plan was made from.</summary>
    public HiresOptions Options { get; }

    /// <summary>The second pass's width.</summary>
    public int Width { get; }

    /// <summary>The second pass's height.</summary>
    public int Height { get; }

    /// <summary>The latent mode when the latents are enlarged; null when the decoded picture is.</summary>
    public LatentUpscaleMode? Latent { get; }

    /// <summary>Steps the second pass runs.</summary>
    public int SecondSteps { get; }

    /// <summary>The step count the second pass is asked for, so that strength leaves exactly <see cref="SecondSteps"/>.</summary>
    public int EngineSteps { get; }

    /// <summary>What A1111 adds to the infotext ("Hires upscale", "Hires upscaler", "Denoising strength", …), in its order.</summary>
    public IReadOnlyDictionary<string, object> Parameters { get; }

    /// <summary>
    /// Checks <paramref name="options"/> against a first pass of <paramref name="width"/>×<paramref name="height"/> and
    /// <paramref name="firstSteps"/> steps on a model whose sides are multiples of <paramref name="sizeMultiple"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A value cannot work; <see cref="ArgumentException.ParamName"/> is <c>Hires.</c> and the option's name.</exception>
    public static HiresPlan Create(HiresOptions options, int width, int height, int firstSteps, int sizeMultiple)
    {
        ArgumentNullException.ThrowIfNull(options);
        var parameters = new Dictionary<string, object>();
        if (!double.IsFinite(options.Scale) || options.Scale < 1 || options.Scale > 16)
            throw new InvalidRequestException("Hires.Scale", null, null, _ => $"The hires scale is {options.Scale.ToString(CultureInfo.InvariantCulture)}; it must be between 1 and 16.");
        if (options.ResizeWidth is < 0 or > 8192 || options.ResizeHeight is < 0 or > 8192)
            throw new InvalidRequestException(options.ResizeWidth is < 0 or > 8192 ? "Hires.ResizeWidth" : "Hires.ResizeHeight", $"{options.ResizeWidth}x{options.ResizeHeight}",
                "each side 0 to 8192", $"The hires size {options.ResizeWidth}x{options.ResizeHeight} is out of range: each side 0 (keep the aspect ratio) to 8192.");
        int toW, toH;
        string sizeField;
        if (options.ResizeWidth == 0 && options.ResizeHeight == 0)
        {
            (toW, toH) = ((int)(width * options.Scale), (int)(height * options.Scale));
            parameters["Hires upscale"] = options.Scale;
            sizeField = "Hires.Scale";
        }
        else
        {
            // One side 0 keeps the aspect ratio, as A1111 does; with both given the picture is stretched (A1111 crops).
            toW = options.ResizeWidth != 0 ? options.ResizeWidth : options.ResizeHeight * width / height;
            toH = options.ResizeHeight != 0 ? options.ResizeHeight : options.ResizeWidth * height / width;
            parameters["Hires resize"] = $"{options.ResizeWidth}x{options.ResizeHeight}";
            sizeField = options.ResizeWidth != 0 ? "Hires.ResizeWidth" : "Hires.ResizeHeight";
        }
        // A1111 truncates to whole pixels; the model also needs its size multiple.
        (toW, toH) = (toW / sizeMultiple * sizeMultiple, toH / sizeMultiple * sizeMultiple);
        if (toW < width || toH < height)
            throw new InvalidRequestException(sizeField, null, null, _ => $"The hires size {toW}x{toH} is smaller than the first pass's {width}x{height}; the hires fix only enlarges.");

        LatentUpscaleMode? latent = null;
        var upscaler = options.Upscaler;
        if (upscaler is null) latent = LatentUpscaleMode.Bilinear;
        else if (LatentResize.Modes.TryGetValue(upscaler, out var mode)) latent = mode;
        else if (!BuiltInUpscalers.Contains(upscaler) && options.Model?.Name != upscaler)
            throw new InvalidRequestException("Hires.Upscaler", null, null, _ => $"The hires upscaler '{upscaler}' is not available; use one of {string.Join(", ", LatentResize.Modes.Keys.Concat(BuiltInUpscalers).Select(n => $"'{n}'"))}"
                + (options.Model is null ? " or an ESRGAN-family .onnx model." : $" or '{options.Model.Name}'."));
        if (upscaler is not null) parameters["Hires upscaler"] = upscaler;

        if (!float.IsFinite(options.Strength) || options.Strength <= 0 || options.Strength > 1)
            throw new InvalidRequestException("Hires.Strength", null, null, _ => $"The hires denoising strength is {options.Strength.ToString(CultureInfo.InvariantCulture)}; it must be in (0, 1] (A1111's default is 0.7): 0 leaves the second pass no step to run.");
        if (options.SecondPassSteps is < 0 or > 1000)
            throw new InvalidRequestException("Hires.SecondPassSteps", null, null, _ => $"The hires steps are {options.SecondPassSteps}; 0 (the first pass's) to 1000 were expected.");
        if (options.SecondPassSteps > 0) parameters["Hires steps"] = options.SecondPassSteps;
        if (options.Scheduler is not null) parameters["Hires sampler"] = options.Scheduler;
        if (options.Prompt is not null) parameters["Hires prompt"] = options.Prompt;
        if (options.NegativePrompt is not null) parameters["Hires negative prompt"] = options.NegativePrompt;
        parameters["Denoising strength"] = options.Strength;
        return new HiresPlan(options, toW, toH, latent, options.SecondPassSteps > 0 ? options.SecondPassSteps : firstSteps, parameters);
    }

    // A1111 runs exactly the hires steps, over a schedule stretched to steps / strength (setup_img2img_steps); the engine
    // runs int(total · strength) of total steps, so the smallest total that leaves the hires steps is asked for.
    private static int StretchedSteps(int steps, float strength)
    {
        var total = (int)(steps / strength);
        while ((int)(total * strength) < steps) total++;
        return total;
    }

    /// <summary>
    /// The second pass for image <paramref name="index"/> of <paramref name="first"/> (made from <paramref name="request"/>):
    /// one image at the hires size from its own seed, starting from the enlarged latents or the enlarged picture.
    /// </summary>
    public async Task<GenerationRequest> SecondPassAsync(GenerationRequest request, GenerationResult first, int index, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(first);
        var seed = first.Seeds.Count > index ? first.Seeds[index] : first.Seed;
        var second = request with
        {
            Width = Width, Height = Height, ImageCount = 1, Seed = seed, SeedPerImage = false, PreviewSteps = null,
            Steps = EngineSteps, Strength = Options.Strength, Scheduler = Options.Scheduler ?? request.Scheduler,
            Prompt = Options.Prompt ?? request.Prompt, NegativePrompt = Options.NegativePrompt ?? request.NegativePrompt,
        };
        var image = first.Images[index];
        if (Latent is { } mode)
        {
            var shape = first.LatentShape;
            var (channels, latentH, latentW) = (shape[1], shape[2], shape[3]);
            var factor = image.Width / latentW;
            var perImage = channels * latentH * latentW;
            return second with { InitLatents = LatentResize.Resize(first.FinalLatents.AsSpan(index * perImage, perImage), channels, latentH, latentW, Height / factor, Width / factor, mode) };
        }
        var picture = await A1111Upscale.ToAsync(RgbaPicture.FromImage(image), Width, Height, Options.Upscaler!, Options.Model, null, cancellationToken).ConfigureAwait(false);
        return second with { InitImage = new InitImage(Width, Height, picture.Rgb) };
    }

    /// <summary>The first pass's infotext (its steps, sampler and size, as A1111 writes them) with the hires fields added.</summary>
    public string? Infotext(string? firstPass)
    {
        if (firstPass is null) return null;
        var fields = string.Concat(Parameters.Select(p => $", {p.Key}: {Quote(p.Value)}"));
        var at = firstPass.LastIndexOf(", RNG: ", StringComparison.Ordinal);
        return at < 0 ? firstPass + fields : firstPass.Insert(at, fields);
    }

    // A1111 quotes values that would break the comma-separated list (json.dumps).
    private static string Quote(object value)
    {
        var text = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
        return text.IndexOfAny([',', ':', '"', '\n']) >= 0 ? JsonSerializer.Serialize(text) : text;
    }
}
