using LocalDiffusion.Pipeline;
using System.ClientModel;
using OpenAI.Images;

namespace LocalDiffusion.Server.Tests;

/// <summary>SD 3 and FLUX.1 models served like any other: listed with their family, defaults and guidance, and generated through the OpenAI SDK and the A1111 API.</summary>
public sealed class FlowFamiliesServerTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await TestServer.StartAsync(new ServerOptions
        {
            Models = [Repo.Model("test", "tiny-sd3"), Repo.Model("test", "tiny-flux-dev"), Repo.Model("test", "tiny-flux-schnell")],
        });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Models_are_listed_with_their_family_defaults_and_guidance()
    {
        var models = (await Json.GetAsync(_server.Http, "v1/models")).GetProperty("data").EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!);
        Assert.Equal(("SD 3", "classifier-free", 28), Describe(models["tiny-sd3"]));
        Assert.Equal(("FLUX.1-dev", "embedded", 28), Describe(models["tiny-flux-dev"]));
        Assert.Equal(("FLUX.1-schnell", "none", 4), Describe(models["tiny-flux-schnell"]));
        Assert.Equal("1024x1024", models["tiny-flux-dev"].GetProperty("native_size").GetString());

        static (string?, string?, int) Describe(System.Text.Json.JsonElement m) =>
            (m.GetProperty("family").GetString(), m.GetProperty("guidance").GetString(), m.GetProperty("defaults").GetProperty("steps").GetInt32());
    }

    [Fact]
    public async Task Openai_sdk_generates_with_each_family()
    {
        foreach (var (model, steps) in new[] { ("tiny-sd3", 28), ("tiny-flux-dev", 28), ("tiny-flux-schnell", 4) })
        {
            ClientResult<GeneratedImage> result = await OpenAiSdkTests.Client(_server.Address, model).GenerateImageAsync("a red cat",
                new ImageGenerationOptions { Size = new GeneratedImageSize(64, 48), ResponseFormat = GeneratedImageFormat.Bytes });
            var png = result.Value.ImageBytes.ToArray();
            Assert.Equal((64, 48), (Images.Decode(png).Width, Images.Decode(png).Height));
            Assert.Contains($"Steps: {steps},", Images.PngText(png, "parameters"));
        }
        // A size the transformer's 2×2 patches cannot take is a 400 naming it.
        var error = Json.Error(await Json.ReadAsync(await Json.PostAsync(_server.Http, "v1/images/generations", new { prompt = "x", model = "tiny-sd3", size = "72x64" }), 400));
        Assert.Equal("size", error.GetProperty("param").GetString());
        Assert.Contains("multiples of 16", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Openai_route_reads_a1111_weights_in_a_flux_prompt()
    {
        async Task<byte[]> Pixels(string prompt)
        {
            using var response = await Json.PostAsync(_server.Http, "v1/images/generations",
                new { model = "tiny-flux-schnell", prompt, size = "64x48", seed = 5, steps = 2, response_format = "b64_json" });
            var json = await Json.ReadAsync(response, 200);
            return Images.Decode(Convert.FromBase64String(json.GetProperty("data")[0].GetProperty("b64_json").GetString()!)).Rgb;
        }
        var plain = await Pixels("a photo of a red cat on a beach");
        // The weight changes the picture; a weight of 1 is only markup, removed before the encoders, so the picture is
        // the plain prompt's (were the brackets read as text, it would not be).
        Assert.NotEqual(plain, await Pixels("a photo of a (red cat:1.6) on a beach"));
        Assert.Equal(plain, await Pixels("a photo of a (red cat:1.0) on a beach"));
        Assert.NotEqual(plain, await Pixels("a photo of a \\(red cat\\) on a beach"));
    }

    [Fact]
    public async Task A1111_txt2img_runs_flux_schnell_with_its_defaults()
    {
        var json = await Json.ReadAsync(await Json.PostAsync(_server.Http, "sdapi/v1/txt2img",
            new { prompt = "a red cat", width = 64, height = 64, seed = 3, override_settings = new { sd_model_checkpoint = "tiny-flux-schnell" } }), 200);
        var info = System.Text.Json.JsonDocument.Parse(json.GetProperty("info").GetString()!).RootElement;
        Assert.Equal(4, info.GetProperty("steps").GetInt32());
        Assert.Equal(0, info.GetProperty("cfg_scale").GetDouble());
        Assert.Single(json.GetProperty("images").EnumerateArray());
    }

    [Fact]
    public async Task Max_sequence_length_reaches_the_t5_encoder_and_out_of_range_is_a_400()
    {
        const string prompt = "a photo of a red cat sitting on a wooden chair beside a window at dusk";
        async Task<byte[]> Pixels(int? maxSequenceLength)
        {
            object body = maxSequenceLength is { } m
                ? new { model = "tiny-flux-schnell", prompt, size = "64x48", seed = 5, steps = 2, response_format = "b64_json", max_sequence_length = m }
                : new { model = "tiny-flux-schnell", prompt, size = "64x48", seed = 5, steps = 2, response_format = "b64_json" };
            var json = await Json.ReadAsync(await Json.PostAsync(_server.Http, "v1/images/generations", body), 200);
            return Images.Decode(Convert.FromBase64String(json.GetProperty("data")[0].GetProperty("b64_json").GetString()!)).Rgb;
        }
        var shortened = await Pixels(4);
        // The library's picture for the same request: the field is the library's MaxSequenceLength.
        using var pipeline = StableDiffusionPipeline.Load(Repo.Model("test", "tiny-flux-schnell"), new PipelineOptions { Device = "cpu" });
        var expected = await pipeline.GenerateAsync(new GenerationRequest { Prompt = prompt, Width = 64, Height = 48, Seed = 5, Steps = 2, MaxSequenceLength = 4 },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(expected.Images[0].Rgb, shortened);
        Assert.NotEqual(await Pixels(null), shortened); // the prompt is longer than 4 T5 tokens: cutting it changes the picture

        var error = Json.Error(await Json.ReadAsync(await Json.PostAsync(_server.Http, "v1/images/generations",
            new { model = "tiny-flux-schnell", prompt, size = "64x48", max_sequence_length = 513 }), 400));
        Assert.Equal("max_sequence_length", error.GetProperty("param").GetString());
    }
}
