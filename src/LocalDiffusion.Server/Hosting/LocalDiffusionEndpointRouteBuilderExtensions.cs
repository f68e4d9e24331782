using LocalDiffusion.Server;
using LocalDiffusion.Server.Automatic1111;
using LocalDiffusion.Server.Hosting;
using LocalDiffusion.Server.OpenAi;
using LocalDiffusion.Server.Queue;
using LocalDiffusion.Server.Web;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using LocalDiffusion.Errors;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps LocalDiffusion's APIs into an app that called <c>services.AddLocalDiffusion(…)</c>.</summary>
public static class LocalDiffusionEndpointRouteBuilderExtensions
{
    /// <summary>
    /// The OpenAI Images API under <paramref name="prefix"/>: <c>images/generations</c>, <c>images/edits</c>,
    /// <c>images/variations</c>, <c>images/files/{name}</c> (the URLs it hands out), <c>models</c>, and the <c>queue</c>
    /// extension. Point an OpenAI client's endpoint at <c>{your address}{prefix}</c>. The web UI calls <c>/v1</c>: map
    /// it at the default prefix when you also map the UI.
    /// </summary>
    /// <param name="endpoints">The app.</param>
    /// <param name="prefix">Starts with <c>/</c>; <c>/v1</c> by default, as OpenAI clients expect.</param>
    public static IEndpointRouteBuilder MapLocalDiffusionOpenAi(this IEndpointRouteBuilder endpoints, string prefix = "/v1")
    {
        var server = Server(endpoints);
        var path = Normalise(prefix, nameof(prefix));
        server.Routes.AddOpenAi(path);
        ImagesEndpoints.Map(endpoints, server, path);
        QueueEndpoints.Map(endpoints, server, path);
        return endpoints;
    }

    /// <summary>The AUTOMATIC1111 API subset, at <c>/sdapi/v1</c> (where A1111 clients look for it; not movable).</summary>
    /// <param name="endpoints">The app.</param>
    public static IEndpointRouteBuilder MapAutomatic1111(this IEndpointRouteBuilder endpoints)
    {
        var server = Server(endpoints);
        server.Routes.AddPrefix("/sdapi");
        SdApiEndpoints.Map(endpoints, server);
        return endpoints;
    }

    /// <summary>
    /// The web UI at <c>/</c> (and its files under <c>/ui</c>). It calls the OpenAI API at <c>/v1</c> and the A1111 API at
    /// <c>/sdapi/v1</c>, so map both at their defaults with it.
    /// </summary>
    /// <param name="endpoints">The app.</param>
    public static IEndpointRouteBuilder MapLocalDiffusionUi(this IEndpointRouteBuilder endpoints)
    {
        var server = Server(endpoints);
        server.Routes.AddExact("/");
        server.Routes.AddPrefix("/ui");
        WebUiEndpoints.Map(endpoints);
        return endpoints;
    }

    /// <summary>Readiness: 200 while a model can generate, 503 while all are loading or failed; the body lists models and queue.</summary>
    /// <param name="endpoints">The app.</param>
    /// <param name="pattern">The route; <c>/health</c> by default.</param>
    public static IEndpointRouteBuilder MapLocalDiffusionHealth(this IEndpointRouteBuilder endpoints, string pattern = "/health")
    {
        var server = Server(endpoints);
        var path = Normalise(pattern, nameof(pattern));
        server.Routes.AddExact(path);
        StatusEndpoints.MapHealth(endpoints, server, path);
        return endpoints;
    }

    /// <summary>The server's meter (<c>LocalDiffusion.Server</c>) in the Prometheus text format; needs the API key when one is set.</summary>
    /// <param name="endpoints">The app.</param>
    /// <param name="pattern">The route; <c>/metrics</c> by default.</param>
    public static IEndpointRouteBuilder MapLocalDiffusionMetrics(this IEndpointRouteBuilder endpoints, string pattern = "/metrics")
    {
        var server = Server(endpoints);
        var path = Normalise(pattern, nameof(pattern));
        server.Routes.AddMetrics(path);
        StatusEndpoints.MapMetrics(endpoints, server, path);
        return endpoints;
    }

    private static ServerContext Server(IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints.ServiceProvider.GetService<ServerContext>()
            ?? throw new InvalidOperationException("LocalDiffusion is not registered: call builder.Services.AddLocalDiffusion(…) first.");
    }

    private static string Normalise(string path, string name)
    {
        ArgumentNullException.ThrowIfNull(path, name);
        var trimmed = path.TrimEnd('/');
        if (!path.StartsWith('/') || trimmed.Length == 0 || trimmed.Contains('{', StringComparison.Ordinal))
            throw new InvalidRequestException(name, null, null, _ => $"'{path}' is not a route prefix: give a path such as /v1 or /api/images (starting with /, no parameters).");
        return trimmed;
    }
}
