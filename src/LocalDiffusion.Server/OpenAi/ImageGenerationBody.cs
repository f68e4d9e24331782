using System.Text.Json;
using System.Text.RegularExpressions;
using LocalDiffusion.Imaging;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Models;

namespace LocalDiffusion.Server.OpenAi;

/// <summary>
/// A parsed <c>POST /v1/images/generations</c> body: OpenAI's fields, checked as OpenAI checks them (each bad one
/// is a 400 naming it), plus the local extensions negative_prompt, seed, steps, guidance_scale, scheduler and loras.
/// </summary>
internal sealed partial record ImageGenerationBody
{
    public const int MaxPromptLength = 32_000;

    public required ServedModel Model { get; init; }
    public required GenerationRequest Request { get; init; }
    public required bool ResponseAsUrl { get; init; }
    public required ImageFormat Format { get; init; }
    public required int Compression { get; init; }
    public required bool Stream { get; init; }
    public required int PartialImages { get; init; }

    /// <summary>Extension: also stream <c>localdiffusion.progress</c> events, one per step (the web UI's progress bar).</summary>
    public required bool StreamProgress { get; init; }

    /// <summary>What the server did differently from what was asked (added to the engine's warnings in the reply).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>The <c>quality</c> the reply reports, in the values OpenAI's responses use (it does not change the picture here).</summary>
    public string Quality { get; init; } = "high";

    /// <summary>The event names' prefix when streaming: <c>image_generation</c>, or <c>image_edit</c> for edits (as OpenAI's SDK types expect).</summary>
    public string EventPrefix { get; init; } = "image_generation";

    [GeneratedRegex("^([0-9]{1,5})x([0-9]{1,5})$", RegexOptions.CultureInvariant)]
    private static partial Regex SizePattern();

    /// <param name="json">The body (a JSON object, or a multipart form's fields as strings).</param>
    /// <param name="catalog">The served models.</param>
    /// <param name="strictTypes">A JSON body: numbers and booleans must be JSON numbers and booleans, as OpenAI requires.</param>
    /// <param name="loraDirectory">The server's <c>--lora-dir</c>, where the <c>loras</c> extension's names are found; null: none.</param>
    public static ImageGenerationBody Parse(JsonElement json, ModelCatalog catalog, bool strictTypes, string? loraDirectory)
    {
        var f = new JsonFields(json, strictTypes);
        var prompt = f.String("prompt");
        if (prompt is null) throw ApiException.BadRequest("prompt", "Missing required parameter: 'prompt'.", "missing_required_parameter");
        if (prompt.Length > MaxPromptLength)
            throw ApiException.BadRequest("prompt", $"Invalid 'prompt': string too long. Expected a string with maximum length {MaxPromptLength}, but got a string with length {prompt.Length} instead.", "string_above_max_length");
        var n = f.Int("n", 1, 10) ?? 1;
        var (width, height) = ParseSize(f.String("size"));
        var modelName = f.String("model");
        // OpenAI's GPT image models always answer with b64_json, DALL-E's default to url; a local model id keeps url.
        var responseFormat = f.Choice("response_format", "url", "b64_json")
            ?? (modelName is not null && modelName.StartsWith("gpt-image", StringComparison.OrdinalIgnoreCase) ? "b64_json" : "url");
        var format = f.Choice("output_format", "png", "jpeg", "webp") switch
        {
            "jpeg" => ImageFormat.Jpeg,
            "webp" => ImageFormat.Webp,
            _ => ImageFormat.Png,
        };
        var compression = f.Int("output_compression", 0, 100) ?? 100;
        if (f.Choice("background", "auto", "opaque", "transparent") == "transparent")
            throw ApiException.BadRequest("background", "background 'transparent' is not supported: this model draws opaque images. Use 'opaque' or 'auto'.");
        // Accepted for compatibility; they have no meaning for a local model, which always runs its full steps.
        var quality = f.Choice("quality", "auto", "low", "medium", "high", "xhigh", "max", "standard", "hd");
        _ = f.Choice("style", "vivid", "natural");
        _ = f.String("moderation");
        _ = f.String("user");
        var stream = f.Bool("stream") ?? false;
        var partialImages = f.Int("partial_images", 0, 3) ?? 0;

        var scheduler = f.String("scheduler");
        if (scheduler is not null) Automatic1111.A1111Schedules.RequireKnown(scheduler, "scheduler");
        var model = catalog.Get(modelName);
        var seed = f.Long("seed", -1, uint.MaxValue);
        var request = new GenerationRequest
        {
            Prompt = prompt,
            NegativePrompt = f.String("negative_prompt") ?? "",
            ImageCount = n,
            Width = width,
            Height = height,
            Seed = seed is null or -1 ? null : seed,
            // Unset: the model's own (the engine fills them in): Turbo runs its one unguided step, not 20 guided ones.
            Steps = f.Int("steps", 1, 1000),
            GuidanceScale = (float?)f.Double("guidance_scale", 0, 100),
            Scheduler = scheduler,
            MaxSequenceLength = f.Int("max_sequence_length", 1, RequestLimits.MaxSequenceLength),
            // Added to the prompt's <lora:…> tags, which the engine resolves in the same folder.
            Loras = LorasField.Parse(json, loraDirectory, strictTypes),
        };
        return new ImageGenerationBody
        {
            Model = model,
            Request = request,
            ResponseAsUrl = responseFormat == "url" && !stream,
            Format = format,
            Compression = compression,
            Stream = stream,
            PartialImages = partialImages,
            StreamProgress = f.Bool("stream_progress") ?? false,
            Quality = quality is "low" or "medium" or "high" or "xhigh" or "max" ? quality : "high",
        };
    }

    /// <summary>"auto" or absent: the model's native size; "WxH": multiples of 8 (the engine checks the model's own limits).</summary>
    private static (int? Width, int? Height) ParseSize(string? size)
    {
        if (size is null || size.Equals("auto", StringComparison.OrdinalIgnoreCase)) return (null, null);
        var match = SizePattern().Match(size);
        if (!match.Success)
            throw ApiException.BadRequest("size", $"Invalid value '{size}' for 'size': use 'auto' or WIDTHxHEIGHT, e.g. '512x512'.");
        int width = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        int height = int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        if (width is < 8 or > 4096 || height is < 8 or > 4096 || width % 8 != 0 || height % 8 != 0)
            throw ApiException.BadRequest("size", $"Invalid value '{size}' for 'size': width and height must be multiples of 8 between 8 and 4096.");
        return (width, height);
    }

    /// <summary>Steps after which previews are decoded: evenly spaced over the steps, never the last (the final image is the last event).</summary>
    public static IReadOnlyCollection<int> PreviewSteps(int steps, int partialImages)
    {
        var at = new SortedSet<int>();
        for (var j = 1; j <= partialImages; j++)
        {
            var step = (int)Math.Round((double)steps * j / (partialImages + 1));
            if (step >= 1 && step < steps) at.Add(step);
        }
        return at;
    }
}
