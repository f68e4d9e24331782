namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary>
/// What the manifests rely on the server for, in one place: <see cref="ProbeTests"/> checks each against a real
/// server, <see cref="ManifestTests"/> checks the manifests use them.
/// </summary>
internal static class ProbePaths
{
    /// <summary>The liveness probe's path: answers 200 while the models load, and without the API key.</summary>
    public const string Liveness = "/";

    /// <summary>What /health's body holds when nothing waits or runs: the preStop drain waits for it.</summary>
    public const string IdleQueue = "\"waiting\":0,\"running\":0";

    /// <summary>The Prometheus gauge of requests waiting for a slot, as /metrics names it.</summary>
    public const string QueueWaitingMetric = "localdiffusion_queue_waiting";

    /// <summary>The Prometheus gauge of generations running, as /metrics names it.</summary>
    public const string QueueRunningMetric = "localdiffusion_queue_running";
}
