namespace LocalDiffusion.Server;

/// <summary>The server could not listen: another program already uses the address and port.</summary>
public sealed class PortInUseException(string host, int port, Exception inner)
    : IOException($"Port {port} on {host} is already in use by another program: stop it, or start this server with another --port (0 picks a free one).", inner)
{
    /// <summary>The port asked for.</summary>
    public int Port { get; } = port;
}
