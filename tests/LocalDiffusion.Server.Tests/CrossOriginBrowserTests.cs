using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// The attack the server must resist, made for real: a page from another origin (a second web server on another
/// loopback port), opened in Chromium, tries every way a page can send a request to the server — fetch with a
/// CORS-simple body, fetch with JSON, HTML form posts (text/plain JSON smuggling, urlencoded, multipart), sendBeacon —
/// and to read its answers. Nothing may run or change. The same page against a server that lists the page's origin in
/// --cors-origin does generate, which shows the page's attempts are real ones the server itself has to refuse.
/// </summary>
public sealed class CrossOriginBrowserTests
{
    // The attacker's page: it fires everything, then records what it could read in #result and sets data-done.
    private const string EvilPage = """
        <!doctype html><html><body>
        <iframe name="sink" style="display:none"></iframe>
        <form id="plain" method="post" enctype="text/plain" target="sink"><input name='{"prompt":"evil","steps":2,"x":"' value='"}'></form>
        <form id="urlencoded" method="post" target="sink"><input name="prompt" value="evil"></form>
        <form id="multipart" method="post" enctype="multipart/form-data" target="sink"><input name="prompt" value="evil"></form>
        <pre id="result"></pre>
        <script>
        const target = new URLSearchParams(location.search).get("target");
        const job = JSON.stringify({ prompt: "evil", size: "64x64", steps: 2 });
        const log = [];
        async function attempt(name, run) {
          try { log.push(name + ": " + await run()); } catch (e) { log.push(name + ": blocked"); }
        }
        (async () => {
          await attempt("no-cors text/plain", async () => { await fetch(target + "/v1/images/generations", { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: job }); return "sent"; });
          await attempt("no-cors a1111", async () => { await fetch(target + "/sdapi/v1/txt2img", { method: "POST", mode: "no-cors", body: job }); return "sent"; });
          await attempt("no-cors options", async () => { await fetch(target + "/sdapi/v1/options", { method: "POST", mode: "no-cors", body: JSON.stringify({ sd_model_checkpoint: "tiny" }) }); return "sent"; });
          // multipart/form-data is CORS-simple too, and a page can put a picture of its own making in it.
          const canvas = Object.assign(document.createElement("canvas"), { width: 64, height: 64 });
          canvas.getContext("2d").fillRect(0, 0, 32, 32);
          const png = await new Promise(r => canvas.toBlob(r, "image/png"));
          for (const path of ["/v1/images/edits", "/v1/images/variations"]) {
            const form = new FormData();
            form.append("image", png, "x.png");
            form.append("prompt", "evil");
            form.append("steps", "2");
            await attempt("no-cors multipart " + path, async () => { await fetch(target + path, { method: "POST", mode: "no-cors", body: form }); return "sent"; });
          }
          await attempt("cors json", async () => { const r = await fetch(target + "/v1/images/generations", { method: "POST", headers: { "Content-Type": "application/json" }, body: job }); return "read " + r.status + " " + (await r.text()).slice(0, 20); });
          await attempt("cors read models", async () => { const r = await fetch(target + "/v1/models"); return "read " + r.status; });
          await attempt("beacon", async () => navigator.sendBeacon(target + "/sdapi/v1/interrupt", "x") ? "sent" : "refused");
          for (const [id, path] of [["plain", "/sdapi/v1/txt2img"], ["urlencoded", "/sdapi/v1/interrupt"], ["multipart", "/v1/images/edits"]]) {
            const form = document.getElementById(id);
            form.action = target + path;
            form.submit();
            await new Promise(r => setTimeout(r, 300));
          }
          document.getElementById("result").textContent = log.join("\n");
          document.body.dataset.done = "1";
        })();
        </script></body></html>
        """;

    [Fact]
    public async Task A_page_from_another_origin_can_neither_run_nor_change_nor_read_anything()
    {
        await using var evil = await EvilSite.StartAsync();
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes, Repo.Tiny] });
        var log = await AttackAsync(evil, server);
        TestContext.Current.TestOutputHelper?.WriteLine(log);
        Assert.Contains("cors json: blocked", log);          // no CORS headers: the browser refuses the preflight
        Assert.Contains("cors read models: blocked", log);   // and hides every answer
        var metrics = await server.Http.GetStringAsync("metrics");
        Assert.DoesNotContain("localdiffusion_generations_total{", metrics);
        Assert.Equal("shapes", (await Json.GetAsync(server.Http, "sdapi/v1/options")).GetProperty("sd_model_checkpoint").GetString());
    }

    [Fact]
    public async Task The_same_page_runs_when_its_origin_is_listed_in_cors_origin()
    {
        await using var evil = await EvilSite.StartAsync();
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes, Repo.Tiny], CorsOrigins = [evil.Origin] });
        var log = await AttackAsync(evil, server);
        TestContext.Current.TestOutputHelper?.WriteLine(log);
        Assert.Contains("cors json: read 200", log);
        Assert.Contains("cors read models: read 200", log);
        Assert.Contains("localdiffusion_generations_total{model=\"shapes\",outcome=\"ok\"}", await server.Http.GetStringAsync("metrics"));
        // A listed origin may change settings too (the no-cors body is not JSON, so that one is still refused: 415).
        Assert.Equal("shapes", (await Json.GetAsync(server.Http, "sdapi/v1/options")).GetProperty("sd_model_checkpoint").GetString());
    }

    private static async Task<string> AttackAsync(EvilSite evil, TestServer server)
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        var target = server.Address.GetLeftPart(UriPartial.Authority);
        await page.GotoAsync($"{evil.Origin}/?target={Uri.EscapeDataString(target)}");
        await page.WaitForSelectorAsync("body[data-done]", new PageWaitForSelectorOptions { State = WaitForSelectorState.Attached, Timeout = 30_000 });
        // Let the last form post and the beacon land before the server is asked what ran.
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("running").GetInt32() == 0, "no generation to be running");
        await Task.Delay(500);
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("running").GetInt32() == 0, "no generation to be running");
        return await page.Locator("#result").TextContentAsync() ?? "";
    }

    /// <summary>The attacker's web server: the page above on another loopback port, so another origin.</summary>
    private sealed class EvilSite : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private EvilSite(WebApplication app, string origin)
        {
            _app = app;
            Origin = origin;
        }

        public string Origin { get; }

        public static async Task<EvilSite> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
            builder.Logging.ClearProviders();
            var app = builder.Build();
            app.MapGet("/", () => Results.Content(EvilPage, "text/html"));
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new EvilSite(app, new Uri(address).GetLeftPart(UriPartial.Authority));
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
