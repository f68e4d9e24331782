using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenAI;
using OpenAI.Images;

namespace LocalDiffusion.Server.Tests.Hosting;

/// <summary>
/// An ASP.NET Core app of its own (a "/hello" route) that hosts LocalDiffusion through AddLocalDiffusion, UseLocalDiffusion
/// and the Map… calls, on a loopback port, driven by the official OpenAI SDK and a raw A1111 request.
/// </summary>
public sealed class HostingTests
{
    /// <summary>The host app as a user would write it; <paramref name="openAiPrefix"/> where the OpenAI API goes.</summary>
    private static async Task<(WebApplication App, Uri Address, HttpClient Http)> StartHostAsync(string openAiPrefix, string? apiKey = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddLocalDiffusion(o =>
        {
            o.Models = [Repo.Shapes];
            o.Device = "cpu";
            o.ApiKey = apiKey;
        });
        var app = builder.Build();
        app.UseLocalDiffusion();
        app.MapGet("/hello", () => "hello from the host");
        app.MapLocalDiffusionOpenAi(openAiPrefix);
        app.MapAutomatic1111();
        app.MapLocalDiffusionHealth();
        await app.StartAsync();
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var address = new Uri(bound.TrimEnd('/') + "/");
        var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
        // The host answers at once; the model loads in the background (the hosted service): /health says when.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await http.GetAsync("health")).StatusCode != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the shapes model did not load within 60 s");
            await Task.Delay(50);
        }
        return (app, address, http);
    }

    private static ImageClient OpenAi(Uri endpoint, string key = "unused") => new("dall-e-2", new ApiKeyCredential(key), new OpenAIClientOptions
    {
        Endpoint = endpoint,
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        NetworkTimeout = TimeSpan.FromSeconds(60),
    });

    [Fact]
    public async Task Host_app_serves_its_own_route_beside_the_OpenAI_and_A1111_APIs_and_stops_gracefully()
    {
        var (app, address, http) = await StartHostAsync("/v1");
        var images = app.Services.GetRequiredService<ServerContext>().Images.Directory;
        try
        {
            Assert.Equal("hello from the host", await http.GetStringAsync("hello"));
            // The host's own unknown paths keep the host's answer (an empty 404), not the API's JSON error.
            using (var missing = await http.GetAsync("nothing-here"))
            {
                Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
                Assert.Empty(await missing.Content.ReadAsStringAsync());
            }
            // The API's unknown paths do get its JSON error.
            using (var apiMissing = await http.GetAsync("v1/nothing"))
            {
                Assert.Equal(HttpStatusCode.NotFound, apiMissing.StatusCode);
                Assert.Equal("not_found", JsonDocument.Parse(await apiMissing.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
            }

            var generated = await OpenAi(new Uri(address, "v1")).GenerateImageAsync("a red circle", new ImageGenerationOptions
            {
                Size = new GeneratedImageSize(64, 64),
                ResponseFormat = GeneratedImageFormat.Bytes,
            });
            var png = generated.Value.ImageBytes.ToArray();
            Assert.True(Images.IsPng(png));
            Assert.Equal((64, 64), (Images.Decode(png).Width, Images.Decode(png).Height));

            using var a1111 = await http.PostAsJsonAsync("sdapi/v1/txt2img", new { prompt = "a blue square", steps = 2, width = 64, height = 64, seed = 1 });
            Assert.Equal(HttpStatusCode.OK, a1111.StatusCode);
            var body = JsonDocument.Parse(await a1111.Content.ReadAsStringAsync()).RootElement;
            var a1111Png = Convert.FromBase64String(body.GetProperty("images")[0].GetString()!);
            Assert.True(Images.IsPng(a1111Png));
            Assert.Equal((64, 64), (Images.Decode(a1111Png).Width, Images.Decode(a1111Png).Height));
            Assert.True(Directory.Exists(images));
        }
        finally
        {
            http.Dispose();
            await app.StopAsync();
            await app.DisposeAsync();
        }
        // Graceful stop: the container disposed the server's state, which removed its temporary image folder.
        Assert.False(Directory.Exists(images));
    }

    [Fact]
    public async Task OpenAI_API_under_another_prefix_hands_out_URLs_under_it_and_the_API_key_guards_it_but_not_the_host()
    {
        var (app, address, http) = await StartHostAsync("/api/openai", apiKey: "secret");
        try
        {
            Assert.Equal("hello from the host", await http.GetStringAsync("hello"));
            using (var unauthorised = await http.GetAsync("api/openai/models"))
                Assert.Equal(HttpStatusCode.Unauthorized, unauthorised.StatusCode);
            using (var oldPrefix = await http.GetAsync("v1/models"))
                Assert.Equal(HttpStatusCode.NotFound, oldPrefix.StatusCode);

            var generated = await OpenAi(new Uri(address, "api/openai"), "secret").GenerateImageAsync("a red circle", new ImageGenerationOptions
            {
                Size = new GeneratedImageSize(64, 64),
                ResponseFormat = GeneratedImageFormat.Uri,
            });
            var url = generated.Value.ImageUri;
            Assert.StartsWith(new Uri(address, "api/openai/images/files/").ToString(), url.ToString());
            // Image files need no key (plain links cannot send one): the host serves them under the same prefix.
            var png = await http.GetByteArrayAsync(url);
            Assert.True(Images.IsPng(png));
        }
        finally
        {
            http.Dispose();
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
