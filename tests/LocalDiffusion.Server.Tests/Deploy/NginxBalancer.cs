using System.Diagnostics;
using System.Globalization;

namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary>
/// Debian's nginx as a load balancer in front of replicas, as docs/deploy.md configures it: least connections, and a
/// request that meets a dead replica, a 429 (queue full) or a 503 (shutting down, or still loading) is passed to the
/// next one, POSTs included (non_idempotent: a generation has no side effect a retry could repeat). max_fails=0: nginx
/// counts a passed-on 429 or 503 as a failure, and would take a replica that is merely busy out of the rotation.
/// </summary>
internal sealed class NginxBalancer : IDisposable
{
    /// <summary>Where Debian installs nginx.</summary>
    public const string Binary = "/usr/sbin/nginx";

    private readonly Process _process;

    private NginxBalancer(Process process, string directory, int port)
    {
        _process = process;
        Directory = directory;
        Port = port;
    }

    /// <summary>The prefix folder: nginx.conf, logs, temporary files.</summary>
    public string Directory { get; }

    /// <summary>The port it listens on, on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>Its address.</summary>
    public Uri Address => new($"http://127.0.0.1:{Port}/");

    /// <summary>The access log: one line per request with each upstream tried and its status ("503, 200": retried once).</summary>
    public string AccessLog => File.Exists(Path.Combine(Directory, "access.log")) ? File.ReadAllText(Path.Combine(Directory, "access.log")) : "";

    /// <summary>The nginx.conf text for <paramref name="upstreams"/> ports, listening on <paramref name="port"/>, logging under <paramref name="directory"/>.</summary>
    public static string Config(string directory, int port, IEnumerable<int> upstreams) => $$"""
        {{(Environment.IsPrivilegedProcess ? "user root;" : "")}}
        worker_processes 1;
        pid {{directory}}/nginx.pid;
        error_log {{directory}}/error.log warn;
        events { worker_connections 512; }
        http {
            log_format upstreams '$request_method $request_uri $status upstreams="$upstream_addr" statuses="$upstream_status" time=$request_time';
            access_log {{directory}}/access.log upstreams;
            client_body_temp_path {{directory}}/tmp/body;
            proxy_temp_path {{directory}}/tmp/proxy;
            fastcgi_temp_path {{directory}}/tmp/fastcgi;
            uwsgi_temp_path {{directory}}/tmp/uwsgi;
            scgi_temp_path {{directory}}/tmp/scgi;
            upstream localdiffusion {
                least_conn;
        {{string.Concat(upstreams.Select(p => $"        server 127.0.0.1:{p.ToString(CultureInfo.InvariantCulture)} max_fails=0;\n"))}}
            }
            server {
                listen 127.0.0.1:{{port}};
                client_max_body_size 50m;
                location / {
                    proxy_pass http://localdiffusion;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $http_host;
                    proxy_read_timeout 300s;
                    proxy_next_upstream error timeout http_429 http_503 non_idempotent;
                }
            }
        }
        """;

    /// <summary>Starts nginx (<c>nginx -p DIR -c nginx.conf -g 'daemon off;'</c>) in front of <paramref name="upstreams"/> and waits until it answers.</summary>
    public static async Task<NginxBalancer> StartAsync(IEnumerable<int> upstreams)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("localdiffusion-nginx-").FullName;
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "tmp"));
        var port = Loopback.FreePort();
        await File.WriteAllTextAsync(Path.Combine(directory, "nginx.conf"), Config(directory, port, upstreams));
        var info = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        // -e: the error log before the config is read (Debian's default, /var/log/nginx, needs root).
        foreach (var arg in new[] { "-p", directory, "-e", Path.Combine(directory, "error.log"), "-c", "nginx.conf", "-g", "daemon off;" })
            info.ArgumentList.Add(arg);
        var process = Process.Start(info)!;
        var balancer = new NginxBalancer(process, directory, port);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (process.HasExited) Assert.Fail($"nginx exited ({process.ExitCode}): {await process.StandardError.ReadToEndAsync()}\n{balancer.ErrorLog}");
            try
            {
                using var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
                return balancer;
            }
            catch (System.Net.Sockets.SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }
        }
    }

    /// <summary>nginx's error log.</summary>
    public string ErrorLog => File.Exists(Path.Combine(Directory, "error.log")) ? File.ReadAllText(Path.Combine(Directory, "error.log")) : "";

    /// <summary>Stops nginx (its workers end with it) and removes its folder.</summary>
    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Signals.Send(_process.Id, Signals.Term); // not SIGKILL: the master takes its workers down with it
            if (!_process.WaitForExit(10_000)) _process.Kill();
        }
        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
