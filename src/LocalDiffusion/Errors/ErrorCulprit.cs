namespace LocalDiffusion.Errors;

/// <summary>
/// What an error blames, as data rather than words in a message: front-ends name the field in their own terms (a CLI
/// flag, an API parameter) and tools can act on the file or the step without reading text.
/// </summary>
public sealed record ErrorCulprit
{
    /// <summary>The library's name of the request or option field at fault (a <see cref="RequestFields"/> name), or null.</summary>
    public string? Field { get; init; }

    /// <summary>The value the field had, or null.</summary>
    public object? Value { get; init; }

    /// <summary>What would have worked ("between 1 and 1000", "a multiple of 8"), or null.</summary>
    public string? Expected { get; init; }

    /// <summary>The file or folder at fault, or null.</summary>
    public string? File { get; init; }

    /// <summary>The key inside the file (a config key, a tensor name), or null.</summary>
    public string? Key { get; init; }

    /// <summary>The pipeline stage where it happened (text encoder, UNet, VAE decoder…), or null.</summary>
    public string? Stage { get; init; }

    /// <summary>The 1-based denoising step, or null.</summary>
    public int? Step { get; init; }
}
