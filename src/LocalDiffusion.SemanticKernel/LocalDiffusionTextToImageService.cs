using LocalDiffusion.Pipeline;
using System.Globalization;
using System.Text.Json;
using LocalDiffusion.Imaging;
using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.Services;
using Microsoft.SemanticKernel.TextToImage;
using LocalDiffusion.Errors;

namespace LocalDiffusion.SemanticKernel;

/// <summary>
/// Semantic Kernel's <see cref="ITextToImageService"/> over a <see cref="StableDiffusionPipeline"/> in this process: no
/// server, no network. Images come back as PNG <see cref="ImageContent"/> with the bytes in <see cref="BinaryContent.Data"/>
/// (and <see cref="BinaryContent.DataUri"/>). SK's obsolete <c>GenerateImageAsync(description, width, height)</c>
/// extension returns the first image's <see cref="BinaryContent.Uri"/>, which SK does not allow to hold a <c>data:</c>
/// URI, so it fails here: call <see cref="GetImageContentsAsync"/>.
/// </summary>
/// <remarks>
/// Settings are read from <see cref="PromptExecutionSettings.ExtensionData"/>, so that any connector's settings class
/// works: <c>width</c> and <c>height</c> (what SK's <c>GenerateImageAsync(description, width, height)</c> sends), or
/// <c>size</c> as <c>"WxH"</c>; <c>n</c> or <c>number_of_images</c>; <c>negative_prompt</c>, <c>seed</c>,
/// <c>steps</c>, <c>guidance_scale</c> and <c>scheduler</c>; and from a connector's typed settings class, its <c>Size</c>
/// (<c>(Width, Height)</c>) and <c>NumberOfImages</c> properties, as SK's OpenAI settings have them. Without a size, the model's native size. The service does
/// not own a pipeline it was given; one it loaded itself (<see cref="Load"/>) is disposed with it.
/// </remarks>
public sealed class LocalDiffusionTextToImageService : ITextToImageService, IDisposable
{
    private readonly StableDiffusionPipeline _pipeline;
    private readonly bool _owned;
    private readonly Dictionary<string, object?> _attributes;

    /// <summary>Wraps a loaded pipeline (not disposed by this service).</summary>
    /// <param name="pipeline">The loaded model.</param>
    /// <param name="modelId">The id SK reports and selects by (<see cref="AIServiceExtensions.ModelIdKey"/>); default: the model folder's name.</param>
    public LocalDiffusionTextToImageService(StableDiffusionPipeline pipeline, string? modelId = null)
        : this(pipeline, modelId, owned: false)
    {
    }

    private LocalDiffusionTextToImageService(StableDiffusionPipeline pipeline, string? modelId, bool owned)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = pipeline;
        _owned = owned;
        _attributes = new Dictionary<string, object?>
        {
            [AIServiceExtensions.ModelIdKey] = modelId ?? Path.GetFileName(pipeline.Info.Root.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)),
        };
    }

    /// <summary>Loads the model in <paramref name="modelDirectory"/> (a diffusers-style ONNX folder); the service owns it.</summary>
    /// <param name="modelDirectory">The model folder.</param>
    /// <param name="options">How it is opened (device, threads, …); null: the defaults.</param>
    /// <param name="modelId">The id SK reports; default: the folder's name.</param>
    public static LocalDiffusionTextToImageService Load(string modelDirectory, PipelineOptions? options = null, string? modelId = null) =>
        new(StableDiffusionPipeline.Load(modelDirectory, options ?? new PipelineOptions()), modelId, owned: true);

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, object?> Attributes => _attributes;

    /// <inheritdoc/>
    public async Task<IReadOnlyList<ImageContent>> GetImageContentsAsync(TextContent input, PromptExecutionSettings? executionSettings = null,
        Kernel? kernel = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        var request = ToRequest(input.Text ?? "", executionSettings?.ExtensionData);
        if (executionSettings is not null) request = WithTypedSettings(request, executionSettings);
        var result = await _pipeline.GenerateAsync(request, cancellationToken: cancellationToken).ConfigureAwait(false);
        var modelId = (string?)_attributes[AIServiceExtensions.ModelIdKey];
        return result.Images.Select(image => Content(image, modelId, result)).ToList();
    }

    private static ImageContent Content(GeneratedImage image, string? modelId, GenerationResult result)
    {
        var png = image.EncodePng(); // with the A1111 "parameters" chunk
        return new ImageContent(png, "image/png") { ModelId = modelId, InnerContent = result };
    }

    /// <summary>The engine request for a prompt and SK's extension data (the keys in the remarks above).</summary>
    internal static GenerationRequest ToRequest(string prompt, IDictionary<string, object>? data)
    {
        var request = new GenerationRequest { Prompt = prompt };
        if (data is null) return request;
        int? Int(string key) => Get(data, key) is { } v ? Convert.ToInt32(v, CultureInfo.InvariantCulture) : null;
        var width = Int("width");
        var height = Int("height");
        if (Get(data, "size") is { } size && ParseSize(Convert.ToString(size, CultureInfo.InvariantCulture)!) is var (w, h))
            (width, height) = (w, h);
        return request with
        {
            Width = width,
            Height = height,
            ImageCount = Int("n") ?? Int("number_of_images") ?? 1,
            NegativePrompt = Get(data, "negative_prompt") is { } negative ? Convert.ToString(negative, CultureInfo.InvariantCulture)! : request.NegativePrompt,
            Seed = Get(data, "seed") is { } seed ? Convert.ToInt64(seed, CultureInfo.InvariantCulture) : null,
            Steps = Int("steps"),
            GuidanceScale = Get(data, "guidance_scale") is { } g ? Convert.ToSingle(g, CultureInfo.InvariantCulture) : null,
            Scheduler = Get(data, "scheduler") is { } s ? Convert.ToString(s, CultureInfo.InvariantCulture) : null,
        };
    }

    // A connector's typed settings (OpenAITextToImageExecutionSettings: Size as (Width, Height), NumberOfImages), read by
    // name so that this package does not depend on any connector.
    private static GenerationRequest WithTypedSettings(GenerationRequest request, PromptExecutionSettings settings)
    {
        var type = settings.GetType();
        if (type == typeof(PromptExecutionSettings)) return request;
        if (type.GetProperty("Size")?.GetValue(settings) is ValueTuple<int, int> size) request = request with { Width = size.Item1, Height = size.Item2 };
        if (type.GetProperty("NumberOfImages")?.GetValue(settings) is int n) request = request with { ImageCount = n };
        return request;
    }

    // Settings deserialised from JSON carry JsonElements; settings built in code carry the values themselves.
    private static object? Get(IDictionary<string, object> data, string key)
    {
        if (!data.TryGetValue(key, out var value)) return null;
        return value is JsonElement json ? json.ValueKind switch
        {
            JsonValueKind.Number => json.TryGetInt64(out var l) ? l : json.GetDouble(),
            JsonValueKind.String => json.GetString(),
            JsonValueKind.Null or JsonValueKind.Undefined => null,
            _ => json.GetRawText(),
        } : value;
    }

    private static (int Width, int Height)? ParseSize(string size)
    {
        var parts = size.Split('x', 'X');
        if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out var w) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var h)) return (w, h);
        throw new InvalidRequestException("size", null, null, called => $"{called} '{size}' is not WIDTHxHEIGHT (e.g. 512x512).");
    }

    /// <summary>Disposes the pipeline when this service loaded it.</summary>
    public void Dispose()
    {
        if (_owned) _pipeline.Dispose();
    }
}
