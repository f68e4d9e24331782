using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Hosting;

/// <summary>
/// Where the LocalDiffusion routes are mapped in the host's app: the API key check protects them, the middleware of
/// <c>UseLocalDiffusion</c> runs for them only (a host's own routes keep its own errors and checks), and image URLs use
/// the OpenAI prefix. Filled by the <c>Map…</c> calls; read per request, so the order of Use and Map does not matter.
/// </summary>
internal sealed class LocalDiffusionRoutes
{
    private readonly List<PathString> _prefixes = [];
    private readonly List<PathString> _exact = [];

    /// <summary>The OpenAI API's prefix (<c>/v1</c> unless mapped elsewhere).</summary>
    public PathString OpenAi { get; private set; } = "/v1";

    /// <summary>The Prometheus route, when mapped.</summary>
    public PathString? Metrics { get; private set; }

    /// <summary>Every path is the server's (the standalone <see cref="LocalDiffusionServer"/>): unknown paths get its JSON 404.</summary>
    public bool OwnsEverything { get; set; }

    public void AddOpenAi(PathString prefix)
    {
        OpenAi = prefix;
        lock (_prefixes) _prefixes.Add(prefix);
    }

    public void AddPrefix(PathString prefix)
    {
        lock (_prefixes) _prefixes.Add(prefix);
    }

    public void AddExact(PathString path)
    {
        lock (_prefixes) _exact.Add(path);
    }

    public void AddMetrics(PathString path)
    {
        Metrics = path;
        AddExact(path);
    }

    /// <summary>Whether a request for <paramref name="path"/> is LocalDiffusion's.</summary>
    public bool Owns(PathString path)
    {
        if (OwnsEverything) return true;
        lock (_prefixes)
            return _prefixes.Exists(p => path.StartsWithSegments(p)) || _exact.Exists(e => path.Equals(e, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Whether <paramref name="path"/> needs the API key: the APIs and the metrics; not the image files (plain links send no header), the UI or /health.</summary>
    public bool IsProtected(PathString path) =>
        (path.StartsWithSegments(OpenAi) && !path.StartsWithSegments(OpenAi.Add("/images/files")))
        || path.StartsWithSegments("/sdapi") || (Metrics is { } metrics && path.StartsWithSegments(metrics));
}
