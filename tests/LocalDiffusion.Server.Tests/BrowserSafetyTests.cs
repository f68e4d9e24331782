using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// The threats of docs/server.md's security section, as raw HTTP: another site's page in the user's browser (a cross-origin
/// request, with or without a CORS-simple body) and a DNS-rebinding name pointed at this machine. Each refusal is checked
/// against the same request from the server's own origin, which must work, and nothing refused may have run.
/// </summary>
public sealed class BrowserSafetyTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private TestServer Server => shared.Instance;
    private HttpClient Http => Server.Http;
    private string OwnOrigin => Server.Address.GetLeftPart(UriPartial.Authority);

    private static HttpRequestMessage Post(string path, string body, string contentType, string? origin = null, string? host = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (origin is not null) request.Headers.Add("Origin", origin);
        if (host is not null) request.Headers.Host = host;
        return request;
    }

    private async Task<int> GenerationsAsync() =>
        (await Http.GetStringAsync("metrics")).Split('\n')
            .Where(l => l.StartsWith("localdiffusion_generations_total", StringComparison.Ordinal))
            .Sum(l => int.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public async Task A_page_of_another_origin_cannot_start_change_or_stop_anything()
    {
        var before = await GenerationsAsync();
        const string job = """{"prompt":"x","size":"64x64","steps":2}""";
        foreach (var (path, body, type) in new[]
        {
            ("v1/images/generations", job, "text/plain"),                  // a CORS-simple body: no preflight would stop it
            ("v1/images/generations", job, "application/json"),
            ("sdapi/v1/txt2img", """{"prompt":"x","steps":2}""", "text/plain"),
            ("sdapi/v1/interrupt", "", "text/plain"),
            ("sdapi/v1/options", """{"sd_model_checkpoint":"tiny"}""", "text/plain"),
            ("v1/images/edits", "--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),
        })
        {
            foreach (var origin in new[] { "http://evil.example", "null", "http://127.0.0.1:1" })
            {
                using var response = await Http.SendAsync(Post(path, body, type, origin));
                var error = Json.Error(await Json.ReadAsync(response, 403));
                Assert.Equal("cross_origin_refused", error.GetProperty("code").GetString());
                Assert.Equal("Origin", error.GetProperty("param").GetString());
                Assert.Contains("--cors-origin", error.GetProperty("message").GetString());
            }
        }
        // A browser that sent no Origin still says where the request came from.
        var beacon = Post("sdapi/v1/interrupt", "", "text/plain");
        beacon.Headers.Add("Sec-Fetch-Site", "cross-site");
        await Json.ReadAsync(await Http.SendAsync(beacon), 403);
        Assert.Equal(before, await GenerationsAsync());
        Assert.Equal("shapes", (await Json.GetAsync(Http, "sdapi/v1/options")).GetProperty("sd_model_checkpoint").GetString());

        // The server's own page (same origin) and programs (no Origin) are served.
        await Json.ReadAsync(await Http.SendAsync(Post("v1/images/generations", job, "application/json", OwnOrigin)), 200);
        await Json.ReadAsync(await Http.SendAsync(Post("sdapi/v1/interrupt", "", "application/json", OwnOrigin)), 200);
        var sameSite = Post("v1/images/generations", job, "application/json");
        sameSite.Headers.Add("Sec-Fetch-Site", "same-origin");
        await Json.ReadAsync(await Http.SendAsync(sameSite), 200);
        Assert.Equal(before + 2, await GenerationsAsync());
    }

    [Fact]
    public async Task Json_routes_refuse_other_content_types_with_415()
    {
        foreach (var type in new[] { "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1" })
        {
            foreach (var path in new[] { "v1/images/generations", "sdapi/v1/txt2img", "sdapi/v1/img2img", "sdapi/v1/options" })
            {
                using var response = await Http.SendAsync(Post(path, """{"prompt":"x"}""", type));
                var error = Json.Error(await Json.ReadAsync(response, 415));
                Assert.Equal("unsupported_media_type", error.GetProperty("code").GetString());
                Assert.Contains("Content-Type: application/json", error.GetProperty("message").GetString());
            }
        }
        // application/json with UTF-8, and the +json suffix, are JSON.
        await Json.ReadAsync(await Http.SendAsync(Post("sdapi/v1/options", "{}", "application/json; charset=UTF-8")), 200);
        await Json.ReadAsync(await Http.SendAsync(Post("sdapi/v1/options", "{}", "application/merge-patch+json")), 200);
    }

    [Fact]
    public async Task A_rebinding_host_name_is_refused_and_urls_never_come_from_the_host_header()
    {
        var port = Server.Address.Port;
        foreach (var path in new[] { "/", "health", "v1/models" })
        {
            using var get = new HttpRequestMessage(HttpMethod.Get, path);
            get.Headers.Host = $"attacker.example:{port}";
            var error = Json.Error(await Json.ReadAsync(await Http.SendAsync(get), 403));
            Assert.Equal("host_not_allowed", error.GetProperty("code").GetString());
            Assert.Contains("--allowed-host attacker.example", error.GetProperty("message").GetString());
        }
        using (var post = Post("v1/images/generations", """{"prompt":"x","steps":2}""", "application/json", host: $"attacker.example:{port}"))
            await Json.ReadAsync(await Http.SendAsync(post), 403);

        // Loopback names and IP literals are this server's; the URL it hands out is its bind address whatever Host says.
        foreach (var host in new[] { $"localhost:{port}", $"app.localhost:{port}", $"127.0.0.1:{port}", $"[::1]:{port}", "10.1.2.3" })
        {
            using var post = Post("v1/images/generations", """{"prompt":"x","steps":2}""", "application/json", host: host);
            var url = (await Json.ReadAsync(await Http.SendAsync(post), 200)).GetProperty("data")[0].GetProperty("url").GetString()!;
            Assert.StartsWith($"http://127.0.0.1:{port}/v1/images/files/", url);
        }
    }

    [Fact]
    public async Task Allowed_hosts_public_url_and_cors_origins_open_what_they_name()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions
        {
            Models = [Repo.Shapes],
            AllowedHosts = ["images.internal", "*.example.com"],
            PublicUrl = new Uri("https://images.example.org/sd/"),
            CorsOrigins = ["http://localhost:3000"],
        });
        async Task<int> StatusAsync(string host, string? origin = null)
        {
            using var request = Post("v1/images/generations", """{"prompt":"x","steps":2,"response_format":"url"}""", "application/json", origin, host);
            using var response = await server.Http.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.OK)
                Assert.StartsWith("https://images.example.org/sd/v1/images/files/", (await Json.ReadAsync(response, 200)).GetProperty("data")[0].GetProperty("url").GetString());
            return (int)response.StatusCode;
        }
        Assert.Equal(200, await StatusAsync("images.internal"));
        Assert.Equal(200, await StatusAsync("a.b.example.com"));
        Assert.Equal(200, await StatusAsync("images.example.org"));
        Assert.Equal(403, await StatusAsync("example.com.evil.net"));
        Assert.Equal(403, await StatusAsync("images.internal.evil.net"));
        // Behind the TLS proxy the page's origin is the public URL's, and a listed CORS origin may call too.
        Assert.Equal(200, await StatusAsync("images.example.org", "https://images.example.org"));
        Assert.Equal(200, await StatusAsync("images.internal", "http://localhost:3000"));
        Assert.Equal(403, await StatusAsync("images.internal", "http://localhost:3001"));

        using var preflight = new HttpRequestMessage(HttpMethod.Options, "v1/images/generations");
        preflight.Headers.Add("Origin", "http://localhost:3000");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "content-type");
        using var answer = await server.Http.SendAsync(preflight);
        Assert.Equal("http://localhost:3000", answer.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Theory]
    [InlineData("notaurl", "CORS origin 'notaurl' is not an origin")]
    [InlineData("http://localhost:3000/app", "CORS origin 'http://localhost:3000/app' is not an origin")]
    public async Task Bad_cors_origins_are_refused_at_start(string origin, string message)
    {
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => LocalDiffusionServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], Port = 0, CorsOrigins = [origin] }));
        Assert.StartsWith(message, e.Message);
    }
}
