using LocalDiffusion.Server.Errors;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LocalDiffusion.Server.Hosting;

/// <summary>What <c>AddLocalDiffusion</c> registers, shared with the standalone <see cref="LocalDiffusionServer"/>.</summary>
internal static class LocalDiffusionServices
{
    /// <summary>The CORS policy for <see cref="ServerOptions.CorsOrigins"/>: named, so a host's own default policy stays its own.</summary>
    public const string CorsPolicy = "LocalDiffusion";

    /// <summary>Registers the server's state (from <c>IOptions&lt;ServerOptions&gt;</c>) and the model loader.</summary>
    public static IServiceCollection AddCore(IServiceCollection services)
    {
        // One ServerContext per container, owning the catalog, queue, image store and metrics; the container disposes it.
        services.TryAddSingleton(sp => ServerContext.Create(sp.GetRequiredService<IOptions<ServerOptions>>().Value, sp.GetRequiredService<ILoggerFactory>()));
        services.AddHostedService<ModelLoadingService>();
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.Encoder = ErrorWriter.Json.Encoder);
        services.AddCors();
        services.AddOptions<CorsOptions>().Configure<IOptions<ServerOptions>>((cors, options) =>
        {
            if (options.Value.CorsOrigins.Count > 0)
                cors.AddPolicy(CorsPolicy, p => p.WithOrigins([.. options.Value.CorsOrigins]).AllowAnyHeader().AllowAnyMethod());
        });
        return services;
    }
}
