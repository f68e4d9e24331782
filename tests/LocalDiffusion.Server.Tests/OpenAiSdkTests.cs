using System.ClientModel;
using System.ClientModel.Primitives;
using LocalDiffusion.Evaluation;
using OpenAI;
using OpenAI.Images;

namespace LocalDiffusion.Server.Tests;

/// <summary>The official OpenAI .NET SDK, pointed at a running server, as an application would use it.</summary>
public sealed class OpenAiSdkTests(SharedServer shared) : IClassFixture<SharedServer>
{
    internal static ImageClient Client(Uri address, string model, string key = "not-needed") =>
        new(model, new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = new Uri(address, "v1"),
            // The SDK retries 429 and 5xx by default; the tests want to see each answer.
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromSeconds(60),
        });

    [Fact]
    public async Task Base64_two_images_at_two_sizes()
    {
        var client = Client(shared.Instance.Address, "tiny");
        foreach (var (w, h) in new[] { (64, 64), (96, 64) })
        {
            var result = await client.GenerateImagesAsync("a red circle on a blue background", 2, new ImageGenerationOptions
            {
                Size = new GeneratedImageSize(w, h),
                ResponseFormat = GeneratedImageFormat.Bytes,
            });
            Assert.Equal(2, result.Value.Count);
            foreach (var image in result.Value)
            {
                var bytes = image.ImageBytes.ToArray();
                Assert.True(Images.IsPng(bytes));
                var (width, height, _) = Images.Decode(bytes);
                Assert.Equal((w, h), (width, height));
                Assert.Equal("a red circle on a blue background", image.RevisedPrompt);
            }
        }
    }

    [Fact]
    public async Task Quality_and_usage_reach_the_sdk_in_the_apis_shapes()
    {
        var client = Client(shared.Instance.Address, "tiny");
        var result = await client.GenerateImageAsync("a red circle on a blue background", new ImageGenerationOptions
        {
            Size = new GeneratedImageSize(64, 64),
            ResponseFormat = GeneratedImageFormat.Bytes,
            Quality = new GeneratedImageQuality("low"),
        });
        var raw = System.Text.Json.JsonDocument.Parse(result.GetRawResponse().Content.ToString()).RootElement;
        Assert.Equal("low", raw.GetProperty("quality").GetString());
        // The SDK's typed view of the same reply: its parser accepts the usage and quality shapes as the API sends them.
        var collection = (await client.GenerateImagesAsync("a red circle on a blue background", 1, new ImageGenerationOptions
        {
            Size = new GeneratedImageSize(64, 64), ResponseFormat = GeneratedImageFormat.Bytes,
        })).Value;
        // The API reports gpt-image qualities (low, medium, high); this SDK's GeneratedImageQuality.High is dall-e-3's "hd".
        Assert.Equal(new GeneratedImageQuality("high"), collection.Quality);
        Assert.NotNull(collection.Usage);
        Assert.True(collection.Usage.InputTokenCount > 0, "input_tokens counts the prompt's text-encoder tokens");
        Assert.Equal(collection.Usage.InputTokenCount, collection.Usage.InputTokenDetails.TextTokenCount);
        Assert.Equal(0, collection.Usage.OutputTokenCount);
    }

    [Theory]
    [InlineData("gpt-image-1", "b64_json")]
    [InlineData("gpt-image-1.5", "b64_json")]
    [InlineData("dall-e-3", "url")]
    [InlineData("dall-e-2", "url")]
    [InlineData("tiny", "url")]
    public async Task The_default_response_format_follows_the_model_name(string model, string field)
    {
        var json = await Json.ReadAsync(await Json.PostAsync(shared.Instance.Http, "v1/images/generations", new { prompt = "x", model, size = "64x64", steps = 2 }), 200);
        var image = json.GetProperty("data")[0];
        Assert.True(image.TryGetProperty(field, out _), $"{model}: expected '{field}' in {image}");
        Assert.Single(image.EnumerateObject(), p => p.Name is "url" or "b64_json");
    }

    [Fact]
    public async Task Url_is_downloadable_and_the_png_carries_its_parameters()
    {
        var client = Client(shared.Instance.Address, "tiny");
        var result = await client.GenerateImageAsync("a yellow star", new ImageGenerationOptions
        {
            Size = new GeneratedImageSize(64, 64),
            ResponseFormat = GeneratedImageFormat.Uri,
        });
        var uri = result.Value.ImageUri;
        Assert.StartsWith(new Uri(shared.Instance.Address, "v1/images/files/").ToString(), uri.ToString());
        var png = await shared.Instance.Http.GetByteArrayAsync(uri);
        Assert.Equal((64, 64), (Images.Decode(png).Width, Images.Decode(png).Height));
        var parameters = Images.PngText(png, "parameters");
        Assert.NotNull(parameters);
        Assert.StartsWith("a yellow star\n", parameters);
        Assert.Contains("Size: 64x64", parameters);
        Assert.Contains("Model: tiny", parameters);
    }

    [Fact]
    public async Task Sdk_errors_carry_the_status_and_the_field()
    {
        var tiny = Client(shared.Instance.Address, "tiny");
        var bad = await Assert.ThrowsAsync<ClientResultException>(() => tiny.GenerateImageAsync("x", new ImageGenerationOptions { Size = new GeneratedImageSize(60, 64) }));
        Assert.Equal(400, bad.Status);
        Assert.Contains("size", bad.Message);

        var unknown = await Assert.ThrowsAsync<ClientResultException>(() => Client(shared.Instance.Address, "no-such-model").GenerateImageAsync("x"));
        Assert.Equal(404, unknown.Status);
        Assert.Contains("no-such-model", unknown.Message);
    }

    [Fact]
    public async Task Api_key_is_required_when_configured()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], ApiKey = "sesame" });
        var options = new ImageGenerationOptions { Size = new GeneratedImageSize(64, 64), ResponseFormat = GeneratedImageFormat.Bytes };
        var denied = await Assert.ThrowsAsync<ClientResultException>(() => Client(server.Address, "tiny", "wrong").GenerateImageAsync("x", options));
        Assert.Equal(401, denied.Status);
        var ok = await Client(server.Address, "tiny", "sesame").GenerateImageAsync("x", options);
        Assert.True(Images.IsPng(ok.Value.ImageBytes.ToArray()));
    }

    [Fact]
    public async Task Shapes_model_draws_what_the_prompt_asks()
    {
        // Seed 1 at the model's defaults is the first picture of models/shapes/samples.png (README), a red circle on blue.
        var http = shared.Instance.Http;
        using var response = await http.PostAsync("v1/images/generations", Json.Body(new
        {
            model = "shapes", prompt = "a red circle on a blue background", seed = 1, response_format = "b64_json",
        }));
        var json = await Json.ReadAsync(response, 200);
        var png = Convert.FromBase64String(json.GetProperty("data")[0].GetProperty("b64_json").GetString()!);
        var (width, height, rgb) = Images.Decode(png);
        var seen = ShapesAnalyser.Analyse(rgb, width, height);
        Assert.Equal(("red", "blue", "circle"), (seen.Color, seen.Background, seen.Shape?.ToString().ToLowerInvariant()));
        Assert.Equal(1, json.GetProperty("seeds")[0].GetInt64());
    }
}
