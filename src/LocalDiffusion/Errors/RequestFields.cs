namespace LocalDiffusion.Errors;

/// <summary>A front-end: who reads an error, and so which name a field goes by.</summary>
public enum FrontEnd
{
    /// <summary>The .NET library: <c>GenerationRequest</c>/<c>PipelineOptions</c> property names.</summary>
    Library,

    /// <summary>The <c>localdiffusion</c> command line: flags.</summary>
    Cli,

    /// <summary>The OpenAI Images API: body fields.</summary>
    OpenAi,

    /// <summary>AUTOMATIC1111's <c>/sdapi/v1</c> API: body fields.</summary>
    Automatic1111,
}

/// <summary>One field's names: the library's and each front-end's (null where that front-end has no such field).</summary>
/// <param name="Library">The property name (<c>Steps</c>), or a method parameter's (<c>refiner</c>).</param>
/// <param name="Cli">The CLI flag.</param>
/// <param name="OpenAi">The OpenAI-API body field (LocalDiffusion's extensions included).</param>
/// <param name="Automatic1111">The A1111 body field.</param>
public sealed record FieldNames(string Library, string? Cli, string? OpenAi, string? Automatic1111);

/// <summary>
/// The one map from the library's field names to what each front-end calls them, read by the CLI's and the server's
/// error reports (an error carries the library's name as data: <see cref="ErrorCulprit.Field"/>).
/// </summary>
public static class RequestFields
{
    /// <summary>Every field a request or option error can name.</summary>
    public static IReadOnlyList<FieldNames> Table { get; } =
    [
        // GenerationRequest
        new("Prompt", "--prompt", "prompt", "prompt"),
        new("NegativePrompt", "--negative-prompt", "negative_prompt", "negative_prompt"),
        new("Steps", "--steps", "steps", "steps"),
        new("GuidanceScale", "--guidance", "guidance_scale", "cfg_scale"),
        new("Width", "--width", "size", "width"),
        new("Height", "--height", "size", "height"),
        new("ImageCount", "--n", "n", "batch_size"),
        new("Seed", "--seed", "seed", "seed"),
        new("Scheduler", "--scheduler", "scheduler", "sampler_name"),
        new("Eta", "--eta", "eta", "eta"),
        new("InitialLatents", "--latents", null, null),
        new("InitImage", "--init-image", "image", "init_images"),
        new("MaskImage", "--mask", "mask", "mask"),
        new("Strength", "--strength", "strength", "denoising_strength"),
        new("MaskBlur", "--mask-blur", "mask_blur", "mask_blur"),
        new("Loras", "--lora", "loras", "prompt"),
        new("Outpaint", "--outpaint", null, null),
        new("ControlNets", "--controlnet", "controlnets", "alwayson_scripts.controlnet.args"),
        new("OriginalSize", "--original-size", null, null),
        new("CropsCoordsTopLeft", "--crop", null, null),
        new("TargetSize", "--target-size", null, null),
        new("NegativeOriginalSize", "--negative-original-size", null, null),
        new("NegativeCropsCoordsTopLeft", "--negative-crop", null, null),
        new("NegativeTargetSize", "--negative-target-size", null, null),
        new("AestheticScore", "--aesthetic-score", null, null),
        new("NegativeAestheticScore", "--negative-aesthetic-score", null, null),
        new("MaxSequenceLength", "--max-sequence-length", "max_sequence_length", null),
        // HiresOptions (the hires fix's second pass)
        new("Hires", "--hires-scale", null, "enable_hr"),
        new("Hires.Scale", "--hires-scale", null, "hr_scale"),
        new("Hires.ResizeWidth", "--hires-size", null, "hr_resize_x"),
        new("Hires.ResizeHeight", "--hires-size", null, "hr_resize_y"),
        new("Hires.Upscaler", "--hires-upscaler", null, "hr_upscaler"),
        new("Hires.Strength", "--hires-strength", null, "denoising_strength"),
        new("Hires.SecondPassSteps", "--hires-steps", null, "hr_second_pass_steps"),
        // StableDiffusionPipeline.GenerateWithRefinerAsync's parameters (A1111's refiner fields)
        new("refiner", "--refiner", null, "refiner_checkpoint"),
        new("switchAt", "--refiner-switch", null, "refiner_switch_at"),
        // PipelineOptions
        new("IntraOpThreads", "--threads", null, null),
        new("Device", "--device", null, null),
        new("Cuda", "--cuda-options", null, null),
        new("TensorRT", "--tensorrt-options", null, null),
        new("CpuArenaExtendStrategy", "--arena-extend-strategy", null, null),
        new("VaeDecoderPath", "--vae", null, null),
        new("PreviewDecoderPath", "--preview-vae", null, null),
        new("FullVaePreviews", "--preview-vae", null, null),
        new("CacheDirectory", "--cache-dir", null, null),
        new("PromptCacheEntries", "--prompt-cache", null, null),
        new("MaxUnetBatch", "--max-unet-batch", null, null),
        new("LoraDirectory", "--lora-dir", null, null),
        new("Embeddings", "--embedding", null, null),
        new("EmbeddingsDirectory", "--embeddings-dir", null, null),
        // LocalDiffusion.Server's ServerOptions (serve's flags)
        new("Port", "--port", null, null),
        new("Host", "--host", null, null),
        new("MaxQueue", "--max-queue", null, null),
        new("Concurrency", "--concurrency", null, null),
        new("MaxBatch", "--max-batch", null, null),
        new("ImageTtl", "--image-ttl-minutes", null, null),
        new("PublicUrl", "--public-url", null, null),
        new("MaxPixels", "--max-pixels", null, null),
        new("OutputDirectory", "--output-dir", null, null),
        new("ControlNetDirectory", "--controlnet-dir", null, null),
        new("UpscalerDirectory", "--upscaler-dir", null, null),
    ];

    private static readonly Dictionary<string, FieldNames> ByLibrary = Table.ToDictionary(f => f.Library, StringComparer.Ordinal);

    /// <summary>
    /// What <paramref name="frontEnd"/> calls the library field <paramref name="library"/>: its flag or body field, or
    /// the library's own name where the front-end has none (so a message never goes without a name).
    /// </summary>
    public static string NameIn(string library, FrontEnd frontEnd)
    {
        if (!ByLibrary.TryGetValue(library, out var names)) return library;
        return frontEnd switch
        {
            FrontEnd.Cli => names.Cli,
            FrontEnd.OpenAi => names.OpenAi,
            FrontEnd.Automatic1111 => names.Automatic1111,
            _ => null,
        } ?? library;
    }

    /// <summary>
    /// The message of <paramref name="e"/> for <paramref name="frontEnd"/>: a typed error describes itself with the
    /// front-end's name for its field; any other exception's message is used as it is.
    /// </summary>
    public static string MessageFor(Exception e, FrontEnd frontEnd) =>
        e is ILocalDiffusionError { Culprit.Field: { } field } typed ? typed.Describe(NameIn(field, frontEnd)) : e.Message;
}
