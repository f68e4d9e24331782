using LocalDiffusion.Server;
using LocalDiffusion.Server.Hosting;

// In the container's namespace, as ASP.NET Core's own Add… methods are, so that Program.cs finds it without a using.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Hosting LocalDiffusion's HTTP APIs in an ASP.NET Core app of your own.</summary>
public static class LocalDiffusionServiceCollectionExtensions
{
    /// <summary>
    /// Registers LocalDiffusion's server state (models, queue, image store, metrics) as a singleton configured through
    /// <c>IOptions&lt;ServerOptions&gt;</c>, and a hosted service that loads the models in the background once the host
    /// has started. Then call <c>app.UseLocalDiffusion()</c> and map the routes you want
    /// (<c>MapLocalDiffusionOpenAi</c>, <c>MapAutomatic1111</c>, <c>MapLocalDiffusionUi</c>, <c>MapLocalDiffusionHealth</c>,
    /// <c>MapLocalDiffusionMetrics</c>). The host's Kestrel listens, so <see cref="ServerOptions.Host"/> and
    /// <see cref="ServerOptions.Port"/> are not used. Bad options throw when the app builds its pipeline or starts.
    /// It also sets the JSON encoder of minimal APIs (<c>ConfigureHttpJsonOptions</c>) to the one the API's bodies use,
    /// which leaves non-ASCII text unescaped.
    /// </summary>
    /// <param name="services">The host's services.</param>
    /// <param name="configure">Sets the options: at least <see cref="ServerOptions.Models"/> or <see cref="ServerOptions.ModelsDirectory"/>.</param>
    public static IServiceCollection AddLocalDiffusion(this IServiceCollection services, Action<ServerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<ServerOptions>().Configure(configure);
        return LocalDiffusionServices.AddCore(services);
    }
}
