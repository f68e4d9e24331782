namespace LocalDiffusion.Server;

/// <summary>How a <see cref="LocalDiffusionServer"/> is set up; the <c>localdiffusion serve</c> options map onto these.</summary>
public sealed record ServerOptions
{
    /// <summary>Model folders to serve; each one's id is its folder name. At least one (or <see cref="ModelsDirectory"/>).</summary>
    public IReadOnlyList<string> Models { get; init; } = [];

    /// <summary>A folder whose sub-folders holding a model_index.json are all served.</summary>
    public string? ModelsDirectory { get; init; }

    /// <summary>Address to bind: 127.0.0.1 by default, so that nothing off this machine can reach the server.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (see <see cref="LocalDiffusionServer.Address"/>).</summary>
    public int Port { get; init; } = 7860;

    /// <summary>When set, API routes require <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Requests that may wait for a generation slot; one more gets 429 at once.</summary>
    public int MaxQueue { get; init; } = 16;

    /// <summary>Generations that run at the same time.</summary>
    public int Concurrency { get; init; } = 1;

    /// <summary>
    /// Dynamic batching: the most images one engine batch may hold. When a slot frees, waiting requests for the same model
    /// that the engine can denoise together (same size, steps and scheduler, both guided or both not, text-to-image; see
    /// <see cref="StableDiffusionPipeline.CanBatch"/>) run as one batch, each with its own result; 1 turns batching off.
    /// </summary>
    public int MaxBatch { get; init; } = 4;

    /// <summary>
    /// Each model's text encoders, UNet and VAE are held only while a generation's stage uses them
    /// (<see cref="PipelineOptions.LowMemory"/>): less memory, a reopen (from the optimised-model cache) per stage per generation.
    /// </summary>
    public bool LowMemory { get; init; }

    /// <summary>Where images handed out by URL are written; null: a temporary folder removed on shutdown.</summary>
    public string? OutputDirectory { get; init; }

    /// <summary>Execution provider for every model (auto | cpu | cuda[:N] | …).</summary>
    public string Device { get; init; } = "auto";

    /// <summary>How long an image URL stays valid; the file is deleted after that.</summary>
    public TimeSpan ImageTtl { get; init; } = TimeSpan.FromMinutes(60);

    /// <summary>Origins allowed to call the API from a browser; empty: CORS off.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = [];

    /// <summary>Largest JSON request body in bytes (a 32,000-character prompt is well under it).</summary>
    public long MaxJsonBodyBytes { get; init; } = 1 << 20;

    /// <summary>Largest request body of any kind (uploads to edits and variations), enforced by Kestrel.</summary>
    public long MaxUploadBytes { get; init; } = 50L << 20;

    /// <summary>Largest single image file in an edits or variations upload (OpenAI's own limit for gpt-image models is 50 MB; 25 MiB here).</summary>
    public long MaxImageBytes { get; init; } = 25L << 20;

    /// <summary>Largest JSON body of <c>/sdapi/v1/img2img</c>, whose pictures come as base64 inside it.</summary>
    public long MaxImg2ImgJsonBytes { get; init; } = 48L << 20;

    /// <summary>
    /// The address clients reach the server at (e.g. https://images.example.com behind a TLS proxy or load balancer),
    /// used for the image URLs it hands out; null: the scheme and Host header of each request.
    /// </summary>
    public Uri? PublicUrl { get; init; }

    /// <summary>CPU threads per ONNX Runtime operator (null: its default).</summary>
    public int? IntraOpThreads { get; init; }

    /// <summary>A VAE decoder every served model decodes with instead of its own (<see cref="PipelineOptions.VaeDecoderPath"/>); null: each model's.</summary>
    public string? VaeDecoderPath { get; init; }

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
        if (ApiKey is { Length: 0 }) throw new ArgumentException("ApiKey must not be empty (leave it unset to turn authentication off).", nameof(ApiKey));
    }
}
