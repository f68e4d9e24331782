using System.Net;
using System.Net.Sockets;

namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary>Loopback helpers: all test traffic stays on 127.0.0.1.</summary>
internal static class Loopback
{
    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits until GET <paramref name="url"/> answers 200; fails after <paramref name="seconds"/>, with <paramref name="log"/>'s text.</summary>
    public static async Task WaitForOkAsync(HttpClient http, string url, Func<string> log, double seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            try
            {
                using var response = await http.GetAsync(url);
                if (response.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException)
            {
            }
            if (DateTime.UtcNow > deadline) Assert.Fail($"{url} did not answer 200 within {seconds} s:\n{log()}");
            await Task.Delay(50);
        }
    }
}
