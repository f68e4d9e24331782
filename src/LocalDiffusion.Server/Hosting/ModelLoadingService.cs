using LocalDiffusion.Server.Http;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace LocalDiffusion.Server.Hosting;

/// <summary>
/// Starts loading the models once the host has started (its server listens: a host that cannot bind its port must not
/// spend minutes loading first), in the background, so the host answers at once (/health says 503 "loading" until one
/// is ready). When the host stops, waiting and running generations are cancelled before the server drains its requests.
/// </summary>
internal sealed class ModelLoadingService(ServerContext context, IHostApplicationLifetime lifetime, IServiceProvider services) : IHostedService
{
    private CancellationTokenRegistration _started;
    private CancellationTokenRegistration _stopping;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _started = lifetime.ApplicationStarted.Register(() =>
        {
            if (context.Options.PublicUrl is null && BoundAddress() is { } bound) context.ImageBase = bound;
            context.StartLoading();
        });
        // ApplicationStopping fires before the server waits for requests in flight: generations must end first.
        _stopping = lifetime.ApplicationStopping.Register(context.Stop);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        context.Stop();
        _started.Dispose();
        _stopping.Dispose();
        return Task.CompletedTask;
    }

    // Image URLs point at the address the host listens on (its first), a wildcard one as this machine's network address.
    private Uri? BoundAddress()
    {
        var address = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        if (address is null) return null;
        var wildcard = address.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal);
        if (!Uri.TryCreate(wildcard, UriKind.Absolute, out var uri)) return null;
        var host = uri.Host.Trim('[', ']');
        if (host is "0.0.0.0" or "::") return AllowedHosts.ImageBase(context.Options with { Host = host, PublicUrl = null }, uri.Port);
        return new Uri($"{uri.Scheme}://{uri.Authority}/");
    }
}
