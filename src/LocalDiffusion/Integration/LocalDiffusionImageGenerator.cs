using LocalDiffusion.Pipeline;
using System.Drawing;
using System.Globalization;
using System.Text.Json;
using LocalDiffusion.Imaging;
using Microsoft.Extensions.AI;

#pragma warning disable MEAI001 // Microsoft.Extensions.AI's image generation types are experimental.
using LocalDiffusion.Errors;

namespace LocalDiffusion.Integration;

/// <summary>
/// LocalDiffusion behind Microsoft.Extensions.AI's <see cref="IImageGenerator"/>: an app written against that
/// abstraction switches from a remote service (e.g. OpenAI's <c>ImageClient.AsIImageGenerator()</c>) to a local model
/// by swapping this one object in.
/// </summary>
/// <remarks>
/// Options map as follows: <see cref="ImageGenerationOptions.Count"/> → images in one batch,
/// <see cref="ImageGenerationOptions.ImageSize"/> → width and height (default: the model's native size),
/// <see cref="ImageGenerationOptions.MediaType"/> → image/png (default, with the A1111 parameters chunk), image/jpeg or
/// image/webp. <see cref="ImageGenerationOptions.AdditionalProperties"/> may carry <c>negative_prompt</c>,
/// <c>seed</c>, <c>steps</c>, <c>guidance_scale</c>, <c>scheduler</c> and, for edits, <c>strength</c>; <see cref="ImageGenerationOptions.RawRepresentationFactory"/>
/// may return a <see cref="GenerationRequest"/> to start from. Images always come back as <see cref="DataContent"/>:
/// there is no host to hand out URLs (<see cref="ImageGenerationResponseFormat.Uri"/> gives data too).
/// Edits (<see cref="ImageGenerationRequest.OriginalImages"/>, e.g. <c>EditImageAsync</c>) work as OpenAI's image edits:
/// the first picture is the starting point (img2img at strength 0.8 by default), its fully transparent pixels, if any,
/// are the area to repaint (inpainting at strength 1), and without a size the output has the picture's size.
/// </remarks>
public sealed class LocalDiffusionImageGenerator : IImageGenerator
{
    private readonly StableDiffusionPipeline _pipeline;
    private readonly bool _ownsPipeline;
    private readonly ImageGeneratorMetadata _metadata;

    /// <summary>Wraps a loaded pipeline; it is disposed with this generator only when <paramref name="ownsPipeline"/> is true.</summary>
    public LocalDiffusionImageGenerator(StableDiffusionPipeline pipeline, string? modelId = null, bool ownsPipeline = false)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = pipeline;
        _ownsPipeline = ownsPipeline;
        ModelId = modelId ?? Path.GetFileName(pipeline.Info.Root.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        _metadata = new ImageGeneratorMetadata("localdiffusion", null, ModelId);
    }

    /// <summary>The model id reported in metadata (default: the model folder's name).</summary>
    public string ModelId { get; }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">A bad option (the message names it).</exception>
    /// <exception cref="ArgumentException">An original image is not a picture (the message says which).</exception>
    public async Task<ImageGenerationResponse> GenerateAsync(ImageGenerationRequest request, ImageGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrEmpty(request.Prompt))
            throw new InvalidRequestException(nameof(request), null, null, called => $"The {called} has no prompt.");
        var format = ImageFormat.Png;
        if (options?.MediaType is { } mediaType)
            format = ImageEncoder.Parse(mediaType)
                ?? throw new InvalidRequestException(nameof(options), null, null, called => $"MediaType '{mediaType}' is not supported; use image/png, image/jpeg or image/webp.");

        var generation = WithOriginalImage(ToGenerationRequest(request.Prompt, options), request.OriginalImages, options);
        var result = await _pipeline.GenerateAsync(generation, null, cancellationToken).ConfigureAwait(false);
        var contents = new List<AIContent>(result.Images.Count);
        foreach (var image in result.Images)
            contents.Add(new DataContent(ImageEncoder.Encode(image, format, quality: 95), ImageEncoder.MediaType(format))
            {
                AdditionalProperties = new AdditionalPropertiesDictionary { ["seed"] = result.Seed, ["parameters"] = image.Parameters },
            });
        return new ImageGenerationResponse(contents) { RawRepresentation = result };
    }

    private GenerationRequest ToGenerationRequest(string prompt, ImageGenerationOptions? options)
    {
        var start = options?.RawRepresentationFactory?.Invoke(this) as GenerationRequest;
        var generation = (start ?? new GenerationRequest { Prompt = prompt }) with { Prompt = prompt };
        if (options is null) return generation;
        if (options.Count is { } count) generation = generation with { ImageCount = count };
        if (options.ImageSize is Size size) generation = generation with { Width = size.Width, Height = size.Height };
        if (options.AdditionalProperties is { } extra)
        {
            if (extra.TryGetValue("negative_prompt", out var negative) && negative is not null)
                generation = generation with { NegativePrompt = AsString(negative) };
            if (extra.TryGetValue("seed", out var seed) && seed is not null)
                generation = generation with { Seed = (long)AsDouble("seed", seed) };
            if (extra.TryGetValue("steps", out var steps) && steps is not null)
                generation = generation with { Steps = (int)AsDouble("steps", steps) };
            if (extra.TryGetValue("guidance_scale", out var guidance) && guidance is not null)
                generation = generation with { GuidanceScale = (float)AsDouble("guidance_scale", guidance) };
            if (extra.TryGetValue("scheduler", out var scheduler) && scheduler is not null)
                generation = generation with { Scheduler = AsString(scheduler) };
        }
        return generation;
    }

    // The first data image is the init image; its transparent pixels the mask. Without a size the picture's own is used.
    private static GenerationRequest WithOriginalImage(GenerationRequest generation, IEnumerable<AIContent>? originals, ImageGenerationOptions? options)
    {
        if (originals?.OfType<DataContent>().FirstOrDefault(c => c.HasTopLevelMediaType("image")) is not { } original)
        {
            return originals?.Any() == true
                ? throw new InvalidRequestException("OriginalImages", null, null, called => $"{called} holds no image data (DataContent with an image/* media type).")
                : generation;
        }
        InitImage image;
        InitImage? mask;
        try
        {
            (image, mask) = InitImage.Decode(original.Data.Span, original.Name ?? "the original image");
        }
        catch (InvalidDataException e)
        {
            throw new InvalidRequestException("OriginalImages", null, null, _ => e.Message, e);
        }
        generation = generation with { InitImage = image, MaskImage = mask };
        if (options?.AdditionalProperties?.TryGetValue("strength", out var strength) == true && strength is not null)
            generation = generation with { Strength = (float)AsDouble("strength", strength) };
        return generation;
    }

    private static string AsString(object value) => value is JsonElement { ValueKind: JsonValueKind.String } e ? e.GetString()! : value.ToString()!;

    // Additional properties arrive as CLR numbers, strings or (after JSON round trips) JsonElements.
    private static double AsDouble(string name, object value) => value switch
    {
        JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
        JsonElement { ValueKind: JsonValueKind.String } e when double.TryParse(e.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        IConvertible c when value is not string => c.ToDouble(CultureInfo.InvariantCulture),
        string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => throw new InvalidRequestException(name, null, null, called => $"AdditionalProperties['{called}'] must be a number; got '{value}'."),
    };

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ImageGeneratorMetadata)) return _metadata;
        if (serviceType == typeof(StableDiffusionPipeline)) return _pipeline;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsPipeline) _pipeline.Dispose();
    }
}
