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

    /// <summary>A folder whose sub-folders holding a model_index.json are all served.</summary>
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

    /// <summary>The LoRA folder: listed by <c>/sdapi/v1/loras</c>, and where prompts' <c>&lt;lora:NAME:WEIGHT&gt;</c> find NAME.safetensors (<see cref="PipelineOptions.LoraDirectory"/>); null: none.</summary>
    public string? LoraDirectory { get; init; }

    /// <summary>Test seam: model loading waits for this task, so a test can see the 503 a loading model gives.</summary>
    internal Task? ModelLoadGate { get; init; }

    internal void Validate()
    {
        if (Models.Count == 0 && ModelsDirectory is null)
            throw new ArgumentException("No model to serve: give at least one model folder or a models directory.", nameof(Models));
        if (Port is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(Port), Port, "Port must be between 0 and 65535.");
        if (MaxQueue < 0) throw new ArgumentOutOfRangeException(nameof(MaxQueue), MaxQueue, "MaxQueue must be 0 or more.");
        if (Concurrency < 1) throw new ArgumentOutOfRangeException(nameof(Concurrency), Concurrency, "Concurrency must be at least 1.");
        if (MaxBatch is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(MaxBatch), MaxBatch, "MaxBatch must be between 1 (no batching) and 64.");
        if (ImageTtl <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(ImageTtl), ImageTtl, "ImageTtl must be positive.");
        if (PublicUrl is { IsAbsoluteUri: false })
            throw new ArgumentException($"PublicUrl '{PublicUrl}' must be an absolute URL such as https://images.example.com.", nameof(PublicUrl));
        if (MaxImageBytes <= 0) throw new ArgumentOutOfRangeException(nameof(MaxImageBytes), MaxImageBytes, "MaxImageBytes must be positive.");
        if (Host is not ("*" or "localhost") && !System.Net.IPAddress.TryParse(Host, out _))
            throw new ArgumentException($"Host '{Host}' is not an address to listen on: give an IP address of this machine (127.0.0.1, 0.0.0.0 for every interface, ::1), or localhost.", nameof(Host));
        if (PublicUrl is { IsAbsoluteUri: true } url && url.Scheme is not ("http" or "https"))
            throw new ArgumentException($"PublicUrl '{PublicUrl}' must be an http:// or https:// URL.", nameof(PublicUrl));
        foreach (var origin in CorsOrigins) NormaliseOrigin(origin);
        foreach (var host in AllowedHosts)
            if (host != "*" && Uri.CheckHostName(host.StartsWith("*.", StringComparison.Ordinal) ? host[2..] : host) == UriHostNameType.Unknown)
                throw new ArgumentException($"Allowed host '{host}' is not a host name (e.g. images.example.com, *.example.com, or * for any).", nameof(AllowedHosts));
        if (OutputDirectory is { } output && File.Exists(output))
            throw new ArgumentException($"OutputDirectory '{output}' is a file; give a folder (it is created if missing).", nameof(OutputDirectory));
        if (MaxPixels is <= 0) throw new ArgumentOutOfRangeException(nameof(MaxPixels), MaxPixels, "MaxPixels must be positive.");
        if (ApiKey is { Length: 0 }) throw new ArgumentException("ApiKey must not be empty (leave it unset to turn authentication off).", nameof(ApiKey));
    }

    /// <summary>An origin as browsers send it (<c>scheme://host[:port]</c>, no path, no trailing slash); throws for anything else.</summary>
    internal static string NormaliseOrigin(string origin)
    {
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            || uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0 || uri.UserInfo.Length > 0)
            throw new ArgumentException($"CORS origin '{origin}' is not an origin: give scheme://host[:port] with nothing after it, e.g. http://localhost:3000.", nameof(CorsOrigins));
        return uri.GetLeftPart(UriPartial.Authority);
    }
}
