using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using LocalDiffusion.Server.Tests.Deploy;
using OpenAI;
using OpenAI.Images;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// The OpenAI routes' <c>loras</c> extension on tiny with <c>--lora-dir models/test/lora</c> (tools/build_lora_test_files.py;
/// LoraPipelineTests shows each file changes tiny's latents by more than 1e-2 and equals the torch-merged model's within
/// 1e-4). Sent by the official OpenAI .NET SDK through a pipeline policy that adds the field to its JSON body (its way to send fields it has no property for) and as a
/// multipart field of /v1/images/edits. No numbers of their own: the expectations are equalities between two routes to the
/// same LoRA (the field and the prompt tag), and inequality with no LoRA, compared on decoded pixels (the PNGs' text
/// chunks hold the prompts, which differ).
/// </summary>
public sealed class LoraApiTests
{
    private static ServerOptions Options => new() { Models = [Repo.Tiny], LoraDirectory = Repo.Model("test", "lora") };

    // The SDK has no property for LocalDiffusion's extension fields: a pipeline policy adds each to the JSON body, as an
    // application would (Deploy/JsonFieldPolicy).
    private static ImageClient Client(Uri address, string? loras)
    {
        var sdk = new OpenAIClientOptions { Endpoint = new Uri(address, "v1"), RetryPolicy = new ClientRetryPolicy(maxRetries: 0), NetworkTimeout = TimeSpan.FromSeconds(60) };
        sdk.AddPolicy(new JsonFieldPolicy("seed", 3), PipelinePosition.PerCall);
        sdk.AddPolicy(new JsonFieldPolicy("steps", 3), PipelinePosition.PerCall);
        if (loras is not null) sdk.AddPolicy(new JsonFieldPolicy("loras", JsonNode.Parse(loras)!), PipelinePosition.PerCall);
        return new ImageClient("tiny", new ApiKeyCredential("not-needed"), sdk);
    }

    private static readonly ImageGenerationOptions Small = new() { Size = new GeneratedImageSize(64, 64), ResponseFormat = GeneratedImageFormat.Bytes };

    private static async Task<byte[]> PixelsAsync(Uri address, string prompt, string? loras) =>
        Images.Decode((await Client(address, loras).GenerateImageAsync(prompt, Small)).Value.ImageBytes.ToArray()).Rgb;

    [Fact]
    public async Task Sdk_loras_field_equals_the_prompt_tag_and_changes_the_picture()
    {
        await using var server = await TestServer.StartAsync(Options);
        var a = server.Address;
        var plain = await PixelsAsync(a, "a red circle", null);
        var field = await PixelsAsync(a, "a red circle", """[{"name": "unet_only_fp32", "weight": 0.8}]""");
        var tag = await PixelsAsync(a, "a red circle <lora:unet_only_fp32:0.8>", null);
        Assert.NotEqual(plain, field);
        Assert.Equal(tag, field);
        // The weight reaches the merge: 0.8 and 1 differ; weight left out is 1, as in a tag without one.
        var full = await PixelsAsync(a, "a red circle", """[{"name": "unet_only_fp32"}]""");
        Assert.NotEqual(field, full);
        Assert.Equal(await PixelsAsync(a, "a red circle <lora:unet_only_fp32>", null), full);
        // The field and a tag together: both LoRAs apply (here the same file twice, so weight 1 + 0.8).
        Assert.NotEqual(full, await PixelsAsync(a, "a red circle <lora:unet_only_fp32:0.8>", """[{"name": "unet_only_fp32"}]"""));
        // Back to no LoRA: the picture of never having used one.
        Assert.Equal(plain, await PixelsAsync(a, "a red circle", "[]"));
    }

    [Fact]
    public async Task Sdk_bad_loras_are_a_400_naming_the_entry()
    {
        await using var server = await TestServer.StartAsync(Options);
        (string Loras, string Param, string Says)[] cases =
        [
            ("""[{"name": "unet_only_fp32"}, {"name": "missing"}]""", "loras[1].name", "kohya_fp16"),
            ("""[{"name": "../lora/kohya_fp16"}]""", "loras[0].name", "not a path"),
            ("""[{"name": "kohya_fp16.safetensors"}]""", "loras[0].name", "unet_only_fp32"),
            ("""[{"name": "/etc/passwd"}]""", "loras[0].name", "no LoRA named"),
            ("""[{"name": "kohya_fp16", "weight": 8}]""", "loras[0].weight", "between -5 and 5"),
            ("""[{"name": "kohya_fp16", "weight": "0.8"}]""", "loras[0].weight", "must be a number"),
            ("""[{"weight": 1}]""", "loras[0].name", "Missing required parameter"),
            ("""["kohya_fp16"]""", "loras[0]", "must be an object"),
            ("""{"name": "kohya_fp16"}""", "loras", "must be an array"),
        ];
        foreach (var (loras, param, says) in cases)
        {
            var refused = await Assert.ThrowsAsync<ClientResultException>(() => Client(server.Address, loras).GenerateImageAsync("a red circle", Small));
            Assert.Equal(400, refused.Status);
            var error = JsonDocument.Parse(refused.GetRawResponse()!.Content.ToString()).RootElement.GetProperty("error");
            Assert.Equal(param, error.GetProperty("param").GetString());
            Assert.Contains(says, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Without_a_lora_folder_the_field_is_refused_and_the_listing_is_empty()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny] });
        using var response = await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = "x", size = "64x64", loras = new[] { new { name = "kohya_fp16" } } });
        var error = Json.Error(await Json.ReadAsync(response, 400));
        Assert.Equal("loras", error.GetProperty("param").GetString());
        Assert.Contains("--lora-dir", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Edits_take_loras_as_a_json_form_field()
    {
        await using var server = await TestServer.StartAsync(Options);
        async Task<HttpResponseMessage> EditAsync(string? loras)
        {
            var form = new MultipartFormDataContent();
            var image = new ByteArrayContent(Images.Picture(64, 64));
            image.Headers.ContentType = new MediaTypeHeaderValue("image/png");
            form.Add(image, "image", "image.png");
            foreach (var (name, value) in new[] { ("prompt", "a red circle"), ("seed", "3"), ("steps", "4"), ("size", "64x64"), ("response_format", "b64_json") })
                form.Add(new StringContent(value), name);
            if (loras is not null) form.Add(new StringContent(loras), "loras");
            return await server.Http.PostAsync("v1/images/edits", form);
        }
        async Task<byte[]> PixelsOf(string? loras) => Images.Decode(Convert.FromBase64String(
            (await Json.ReadAsync(await EditAsync(loras), 200)).GetProperty("data")[0].GetProperty("b64_json").GetString()!)).Rgb;

        Assert.NotEqual(await PixelsOf(null), await PixelsOf("""[{"name": "kohya_fp16", "weight": 1}]"""));
        var error = Json.Error(await Json.ReadAsync(await EditAsync("kohya_fp16:1"), 400));
        Assert.Equal("loras", error.GetProperty("param").GetString());
        Assert.Contains("JSON array", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        error = Json.Error(await Json.ReadAsync(await EditAsync("""[{"name": "nope"}]"""), 400));
        Assert.Equal("loras[0].name", error.GetProperty("param").GetString());
        Assert.Equal("lora_not_found", error.GetProperty("code").GetString());
    }
}
