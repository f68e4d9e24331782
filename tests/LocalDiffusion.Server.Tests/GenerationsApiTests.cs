using System.Net;

namespace LocalDiffusion.Server.Tests;

/// <summary>The generations endpoint's fields and extensions over plain HTTP, and the routes around it.</summary>
public sealed class GenerationsApiTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private HttpClient Http => shared.Instance.Http;

    [Fact]
    public async Task Long_prompt_is_revised_to_what_the_text_encoder_sees()
    {
        var words = string.Join(' ', Enumerable.Range(0, 120).Select(i => i % 2 == 0 ? "red" : "circle"));
        // tiny-static's UNet takes exactly 77 tokens; on "tiny" (dynamic sequence) long prompts are encoded whole, in chunks.
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Model("test", "tiny-static")] });
        using var response = await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = words, size = "64x64", steps = 2, response_format = "b64_json" });
        var json = await Json.ReadAsync(response, 200);
        var revised = json.GetProperty("data")[0].GetProperty("revised_prompt").GetString()!;
        // The revised prompt is the longest run of whole words the model's tokenizer keeps: one more word would be cut.
        var tokenizer = Tokenizer.ClipTokenizer.Load(Path.Combine(Repo.Tiny, "tokenizer"));
        var kept = revised.Split(' ').Length;
        Assert.StartsWith(revised + " ", words);
        Assert.Equal(0, tokenizer.Encode(revised).TruncatedTokens);
        Assert.True(tokenizer.Encode(string.Join(' ', words.Split(' ').Take(kept + 1))).TruncatedTokens > 0);
        Assert.Contains("token(s) were dropped", json.GetProperty("warnings")[0].GetString());
    }

    [Theory]
    [InlineData("jpeg", new byte[] { 0xFF, 0xD8, 0xFF })]
    [InlineData("webp", new byte[] { (byte)'R', (byte)'I', (byte)'F', (byte)'F' })]
    public async Task Output_formats(string format, byte[] magic)
    {
        using var response = await Json.PostAsync(Http, "v1/images/generations", new
        {
            model = "tiny", prompt = "x", size = "64x64", steps = 2, output_format = format, output_compression = 80, quality = "high", style = "vivid", moderation = "low", user = "u1", background = "opaque",
        });
        var json = await Json.ReadAsync(response, 200);
        Assert.Equal(format, json.GetProperty("output_format").GetString());
        var url = json.GetProperty("data")[0].GetProperty("url").GetString()!;
        Assert.EndsWith("." + format, url);
        using var file = await Http.GetAsync(url);
        Assert.Equal($"image/{format}", file.Content.Headers.ContentType?.MediaType);
        var bytes = await file.Content.ReadAsByteArrayAsync();
        Assert.Equal(magic, bytes[..magic.Length]);
        Assert.Equal((64, 64), (Images.Decode(bytes).Width, Images.Decode(bytes).Height));
    }

    [Fact]
    public async Task Same_seed_same_picture_and_openai_model_names_mean_the_default()
    {
        async Task<byte[]> Draw(string model)
        {
            using var response = await Json.PostAsync(Http, "v1/images/generations", new { model, prompt = "a green square", seed = 9, steps = 8, response_format = "b64_json" });
            var json = await Json.ReadAsync(response, 200);
            Assert.Equal("shapes", json.GetProperty("model").GetString());
            return Images.Decode(Convert.FromBase64String(json.GetProperty("data")[0].GetProperty("b64_json").GetString()!)).Rgb;
        }
        Assert.Equal(await Draw("shapes"), await Draw("dall-e-3"));
    }

    [Fact]
    public async Task Models_and_health()
    {
        var models = await Json.GetAsync(Http, "v1/models");
        Assert.Equal("list", models.GetProperty("object").GetString());
        Assert.Equal(["shapes", "tiny"], models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.Equal("64x64", models.GetProperty("data")[0].GetProperty("native_size").GetString());
        var one = await Json.GetAsync(Http, "v1/models/tiny");
        Assert.Equal("tiny", one.GetProperty("id").GetString());
        var health = await Json.GetAsync(Http, "health");
        Assert.Equal("ok", health.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Cors_is_off_unless_an_origin_is_allowed()
    {
        static HttpRequestMessage Preflight() => new(HttpMethod.Options, "v1/images/generations")
        {
            Headers = { { "Origin", "http://app.example" }, { "Access-Control-Request-Method", "POST" }, { "Access-Control-Request-Headers", "content-type,authorization" } },
        };
        using (var closed = await Http.SendAsync(Preflight()))
            Assert.False(closed.Headers.Contains("Access-Control-Allow-Origin"));

        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], CorsOrigins = ["http://app.example"], ApiKey = "k" });
        using var open = await server.Http.SendAsync(Preflight());
        Assert.Equal("http://app.example", open.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task Public_url_names_the_image_urls_and_replicas_share_the_output_folder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "ld-shared-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = new ServerOptions { Models = [Repo.Tiny], OutputDirectory = folder, PublicUrl = new Uri("https://images.example.com/") };
            await using var a = await TestServer.StartAsync(options);
            await using var b = await TestServer.StartAsync(options);
            using var response = await Json.PostAsync(a.Http, "v1/images/generations", new { prompt = "x", size = "64x64", steps = 2 });
            var url = (await Json.ReadAsync(response, 200)).GetProperty("data")[0].GetProperty("url").GetString()!;
            Assert.StartsWith("https://images.example.com/v1/images/files/", url);
            // The other replica serves the file the first one issued: the folder is the only shared state.
            var path = new Uri(url).AbsolutePath.TrimStart('/');
            Assert.True(Images.IsPng(await b.Http.GetByteArrayAsync(path)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Image_urls_expire_and_their_files_are_deleted()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], ImageTtl = TimeSpan.FromSeconds(1) });
        using var response = await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = "x", size = "64x64", steps = 2 });
        var url = (await Json.ReadAsync(response, 200)).GetProperty("data")[0].GetProperty("url").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync(url)).StatusCode);
        Assert.Single(Directory.GetFiles(server.Server.OutputDirectory));
        await Task.Delay(TimeSpan.FromSeconds(1.2));
        Assert.Equal(HttpStatusCode.NotFound, (await server.Http.GetAsync(url)).StatusCode);
        // The cleanup runs every quarter TTL (at least every second): the file goes soon after it expires.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Directory.GetFiles(server.Server.OutputDirectory).Length > 0 && DateTime.UtcNow < deadline) await Task.Delay(100);
        Assert.Empty(Directory.GetFiles(server.Server.OutputDirectory));
    }

    [Fact]
    public void Loopback_detection()
    {
        Assert.True(LocalDiffusionServer.IsLoopback("127.0.0.1"));
        Assert.True(LocalDiffusionServer.IsLoopback("::1"));
        Assert.True(LocalDiffusionServer.IsLoopback("localhost"));
        Assert.False(LocalDiffusionServer.IsLoopback("0.0.0.0"));
        Assert.False(LocalDiffusionServer.IsLoopback("192.168.1.10"));
    }
}
