using System.Runtime.InteropServices;

namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary>POSIX signals to child processes (.NET's Process.Kill sends only SIGKILL).</summary>
internal static partial class Signals
{
    /// <summary>SIGTERM: a polite stop, as Kubernetes, Docker and nginx's fast shutdown use it.</summary>
    public const int Term = 15;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>.</summary>
    public static void Send(int pid, int signal)
    {
        if (kill(pid, signal) != 0) throw new InvalidOperationException($"kill -{signal} {pid} failed (errno {Marshal.GetLastPInvokeError()})");
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
