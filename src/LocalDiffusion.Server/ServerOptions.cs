using LocalDiffusion.Pipeline;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Server;

/// <summary>
/// How a <see cref="LocalDiffusionServer"/> is set up; the <c>localdiffusion serve</c> options map onto these. Hosted in an
/// ASP.NET Core app (<c>services.AddLocalDiffusion(o =&gt; …)</c>), the host's own Kestrel listens: <see cref="Host"/> and
/// <see cref="Port"/> are not used there, and <see cref="MaxUploadBytes"/> is applied per request to the LocalDiffusion routes.
/// </summary>
public sealed record ServerOptions
{
    /// <summary>Model folders to serve; each one's id is its folder name. At least one (or <see cref="ModelsDirectory"/>).</summary>
    public IReadOnlyList<string> Models { get; set; } = [];

    /// <summary>A folder whose sub-folders holding a model (a model_index.json, or Black Forest Labs' FLUX.1 layout) are all served.</summary>
    public string? ModelsDirectory { get; set; }

    /// <summary>Address to bind (an IP address, <c>*</c> or <c>localhost</c>): 127.0.0.1 by default, so that nothing off this machine can reach the server.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (see <see cref="LocalDiffusionServer.Address"/>).</summary>
    public int Port { get; set; } = 7860;

    /// <summary>When set, API routes require <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Requests that may wait for a generation slot; one more gets 429 at once.</summary>
    public int MaxQueue { get; set; } = 16;

    /// <summary>Generations that run at the same time.</summary>
    public int Concurrency { get; set; } = 1;

    /// <summary>
    /// Dynamic batching: the most images one engine batch may hold. When a slot frees, waiting requests for the same model
    /// that the engine can denoise together (same size, steps and scheduler, both guided or both not, text-to-image; see
    /// <see cref="StableDiffusionPipeline.CanBatch"/>) run as one batch, each with its own result; 1 turns batching off.
    /// </summary>
    public int MaxBatch { get; set; } = 4;

    /// <summary>
    /// Each model's text encoders, UNet and VAE are held only while a generation's stage uses them
    /// (<see cref="PipelineOptions.LowMemory"/>): less memory, a reopen (from the optimised-model cache) per stage per generation.
    /// </summary>
    public bool LowMemory { get; set; }

    /// <summary>
    /// Prompts whose encoded conditioning each model keeps (<see cref="PipelineOptions.PromptCacheEntries"/>): a repeated
    /// prompt skips the text encoders, pictures are bit-identical. 0 turns it off.
    /// </summary>
    public int PromptCacheEntries { get; init; } = 64;

    /// <summary>Where images handed out by URL are written; null: a temporary folder removed on shutdown.</summary>
    public string? OutputDirectory { get; set; }

    /// <summary>Execution provider for every model (auto | cpu | cuda[:N] | …).</summary>
    public string Device { get; set; } = "auto";

    /// <summary>How long an image URL stays valid; the file is deleted after that.</summary>
    public TimeSpan ImageTtl { get; set; } = TimeSpan.FromMinutes(60);

    /// <summary>
    /// Origins (scheme://host[:port]) whose pages may call the API from a browser; empty: CORS off, and state-changing
    /// requests from any page but the server's own web UI are refused.
    /// </summary>
    public IReadOnlyList<string> CorsOrigins { get; set; } = [];

    /// <summary>
    /// Host names clients may reach the server under, beyond the loopback names, the bind address and the host of
    /// <see cref="PublicUrl"/> (IP addresses are always accepted). <c>*.example.com</c> allows sub-domains; <c>*</c> turns the
    /// check off. Any other <c>Host</c> header is refused, which stops DNS-rebinding pages.
    /// </summary>
    public IReadOnlyList<string> AllowedHosts { get; set; } = [];

    /// <summary>
    /// Most pixels (width × height) one image of a request may have; null: 4× the model's native area. Larger sizes are
    /// refused (400 naming <c>size</c>), so one request cannot hold the generation slot for minutes.
    /// </summary>
    public long? MaxPixels { get; set; }

    /// <summary>Largest JSON request body in bytes (a 32,000-character prompt is well under it).</summary>
    public long MaxJsonBodyBytes { get; set; } = 1 << 20;

    /// <summary>Largest request body of any kind (uploads to edits and variations), enforced by Kestrel.</summary>
    public long MaxUploadBytes { get; set; } = 50L << 20;

    /// <summary>Largest single image file in an edits or variations upload (OpenAI's own limit for gpt-image models is 50 MB; 25 MiB here).</summary>
    public long MaxImageBytes { get; set; } = 25L << 20;

    /// <summary>Largest JSON body of <c>/sdapi/v1/img2img</c>, whose pictures come as base64 inside it.</summary>
    public long MaxImg2ImgJsonBytes { get; set; } = 48L << 20;

    /// <summary>
    /// The address clients reach the server at (e.g. https://images.example.com behind a TLS proxy or load balancer),
    /// used for the image URLs it hands out; null: the bind address (for 0.0.0.0, this machine's first network address).
    /// Never a request's own Host header.
    /// </summary>
    public Uri? PublicUrl { get; set; }

    /// <summary>CPU threads per ONNX Runtime operator (null: its default).</summary>
    public int? IntraOpThreads { get; set; }

    /// <summary>A VAE decoder every served model decodes with instead of its own (<see cref="PipelineOptions.VaeDecoderPath"/>); null: each model's.</summary>
    public string? VaeDecoderPath { get; set; }

    /// <summary>
    /// The TAESD every served model decodes its live previews with (<see cref="PipelineOptions.PreviewDecoderPath"/>:
    /// <c>/sdapi/v1/progress</c>'s current_image, the OpenAI API's partial images, the web UI); null: each model's own
    /// taesd/, else its full VAE.
    /// </summary>
    public string? PreviewDecoderPath { get; set; }

    /// <summary>Live previews with the full VAE even where a TAESD is at hand (<see cref="PipelineOptions.FullVaePreviews"/>).</summary>
    public bool FullVaePreviews { get; set; }

    /// <summary>Tiled VAE decoding for every model (<see cref="PipelineOptions.VaeTiling"/>; default: above 1024², in 512-pixel tiles).</summary>
    public VaeTilingOptions VaeTiling { get; init; } = new();

    /// <summary>The LoRA folder: listed by <c>/sdapi/v1/loras</c>, and where prompts' <c>&lt;lora:NAME:WEIGHT&gt;</c> find NAME.safetensors (<see cref="PipelineOptions.LoraDirectory"/>); null: none.</summary>
    public string? LoraDirectory { get; init; }

    /// <summary>The textual-inversion folder (<see cref="PipelineOptions.EmbeddingsDirectory"/>): listed by <c>/sdapi/v1/embeddings</c>; each file's name in a prompt of either API uses it. Null: none.</summary>
    public string? EmbeddingsDirectory { get; init; }
    /// <summary>
    /// The ControlNet folder: its subfolders holding model.onnx and its .onnx files, listed by <c>/controlnet/model_list</c>
    /// and named by requests' ControlNet units; null: none.
    /// </summary>
    public string? ControlNetDirectory { get; init; }
    /// <summary>
    /// A folder of ESRGAN-family ONNX upscalers: each <c>NAME.onnx</c> is the upscaler NAME, listed by
    /// <c>/sdapi/v1/upscalers</c> and usable as <c>upscaler_1</c>/<c>upscaler_2</c> of <c>/sdapi/v1/extra-single-image</c> and
    /// as the hires fix's <c>hr_upscaler</c>; null: only the built-in upscalers.
    /// </summary>
    public string? UpscalerDirectory { get; init; }

    /// <summary>Test seam: model loading waits for this task, so a test can see the 503 a loading model gives.</summary>
    internal Task? ModelLoadGate { get; init; }

    internal void Validate()
    {
        if (Models.Count == 0 && ModelsDirectory is null)
            throw new InvalidRequestException(nameof(Models), null, null, _ => "No model to serve: give at least one model folder or a models directory.");
        if (ControlNetDirectory is { } controlNets && !Directory.Exists(controlNets))
            throw new InvalidRequestException(nameof(ControlNetDirectory), controlNets, "an existing folder", _ => $"The ControlNet folder {controlNets} does not exist.");
        if (Port is < 0 or > 65535) throw new InvalidRequestException(nameof(Port), Port, null, called => $"{called} must be between 0 and 65535.");
        if (MaxQueue < 0) throw new InvalidRequestException(nameof(MaxQueue), MaxQueue, null, called => $"{called} must be 0 or more.");
        if (Concurrency < 1) throw new InvalidRequestException(nameof(Concurrency), Concurrency, null, called => $"{called} must be at least 1.");
        if (MaxBatch is < 1 or > 64) throw new InvalidRequestException(nameof(MaxBatch), MaxBatch, null, called => $"{called} must be between 1 (no batching) and 64.");
        if (ImageTtl <= TimeSpan.Zero) throw new InvalidRequestException(nameof(ImageTtl), ImageTtl, null, called => $"{called} must be positive.");
        if (PublicUrl is { IsAbsoluteUri: false })
            throw new InvalidRequestException(nameof(PublicUrl), null, null, called => $"{called} '{PublicUrl}' must be an absolute URL such as https://images.example.com.");
        if (MaxImageBytes <= 0) throw new InvalidRequestException(nameof(MaxImageBytes), MaxImageBytes, null, called => $"{called} must be positive.");
        if (Host is not ("*" or "localhost") && !System.Net.IPAddress.TryParse(Host, out _))
            throw new InvalidRequestException(nameof(Host), null, null, called => $"{called} '{Host}' is not an address to listen on: give an IP address of this machine (127.0.0.1, 0.0.0.0 for every interface, ::1), or localhost.");
        if (PublicUrl is { IsAbsoluteUri: true } url && url.Scheme is not ("http" or "https"))
            throw new InvalidRequestException(nameof(PublicUrl), null, null, called => $"{called} '{PublicUrl}' must be an http:// or https:// URL.");
        foreach (var origin in CorsOrigins) NormaliseOrigin(origin);
        foreach (var host in AllowedHosts)
            if (host != "*" && Uri.CheckHostName(host.StartsWith("*.", StringComparison.Ordinal) ? host[2..] : host) == UriHostNameType.Unknown)
                throw new InvalidRequestException(nameof(AllowedHosts), null, null, _ => $"Allowed host '{host}' is not a host name (e.g. images.example.com, *.example.com, or * for any).");
        if (OutputDirectory is { } output && File.Exists(output))
            throw new InvalidRequestException(nameof(OutputDirectory), null, null, called => $"{called} '{output}' is a file; give a folder (it is created if missing).");
        if (UpscalerDirectory is { } upscalers && !Directory.Exists(upscalers))
            throw new InvalidRequestException(nameof(UpscalerDirectory), upscalers, "a folder",
                called => $"{called} '{upscalers}' is not a folder; give the folder that holds the upscalers' .onnx files.");
        if (MaxPixels is <= 0) throw new InvalidRequestException(nameof(MaxPixels), MaxPixels, null, called => $"{called} must be positive.");
        if (EmbeddingsDirectory is { } embeddings && !Directory.Exists(embeddings))
            throw new InvalidRequestException(nameof(EmbeddingsDirectory), embeddings, "an existing folder",
                called => $"{called} '{embeddings}' does not exist; give a folder of textual-inversion files (.pt, .bin, .safetensors).");
        if (ApiKey is { Length: 0 }) throw new InvalidRequestException(nameof(ApiKey), null, null, called => $"{called} must not be empty (leave it unset to turn authentication off).");
    }

    /// <summary>An origin as browsers send it (<c>scheme://host[:port]</c>, no path, no trailing slash); throws for anything else.</summary>
    internal static string NormaliseOrigin(string origin)
    {
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            || uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0)
            throw new InvalidRequestException(nameof(CorsOrigins), null, null, _ => $"CORS origin '{origin}' is not an origin: give scheme://host[:port] with nothing after it, e.g. http://localhost:3000.");
        return uri.GetLeftPart(UriPartial.Authority);
    }
}
