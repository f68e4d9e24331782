using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace LocalDiffusion.Server.Http;

/// <summary>
/// The host names a request's <c>Host</c> header may carry. A DNS-rebinding page reaches a loopback server under its own
/// name (<c>attacker.example</c> resolving to 127.0.0.1), so names are allowed only when they are this server's: loopback
/// names, the bind address, the host of the public URL, and the <c>--allowed-host</c> values. IP literals are always
/// allowed: a page can only send one by being loaded from that very address, so the browser's same-origin rule holds.
/// </summary>
internal sealed class AllowedHosts
{
    private readonly HashSet<string> _names = new(StringComparer.OrdinalIgnoreCase) { "localhost" };
    private readonly List<string> _suffixes = [".localhost"];
    private readonly bool _any;

    public AllowedHosts(ServerOptions options)
    {
        if (options.PublicUrl is { } url) _names.Add(url.IdnHost);
        if (!LocalDiffusionServer.IsLoopback(options.Host))
        {
            // Reachable from the network: the names the network knows this machine by.
            var machine = Dns.GetHostName();
            _names.Add(machine);
            _names.Add(machine + ".local");
        }
        foreach (var host in options.AllowedHosts)
        {
            if (host == "*") _any = true;
            else if (host.StartsWith("*.", StringComparison.Ordinal)) _suffixes.Add(host[1..]);
            else _names.Add(host);
        }
    }

    /// <summary>Whether <paramref name="host"/> (without its port; brackets allowed around IPv6) is one of this server's names.</summary>
    public bool Allows(string host)
    {
        if (_any || host.Length == 0) return true;
        var bare = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        if (IPAddress.TryParse(bare, out _)) return true;
        bare = bare.TrimEnd('.');
        return _names.Contains(bare) || _suffixes.Exists(s => bare.EndsWith(s, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// The address image URLs are built from when no public URL is set: the bind address, or for a wildcard bind this
    /// machine's first non-loopback IPv4 address (the one a client on the network most likely used).
    /// </summary>
    public static Uri ImageBase(ServerOptions options, int port)
    {
        if (options.PublicUrl is { } url) return url;
        var host = options.Host;
        if (host is "*" or "0.0.0.0" or "::")
            host = NetworkInterface.GetAllNetworkInterfaces()
                .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
                .SelectMany(n => n.GetIPProperties().UnicastAddresses)
                .Select(a => a.Address)
                .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))?.ToString() ?? "127.0.0.1";
        else if (IPAddress.TryParse(host, out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6)
            host = $"[{host}]";
        return new Uri($"http://{host}:{port}/");
    }
}
