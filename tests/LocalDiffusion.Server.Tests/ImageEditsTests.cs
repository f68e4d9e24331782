using System.ClientModel;
using System.Net.Http.Headers;
using System.Text.Json;
using OpenAI.Images;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// <c>/v1/images/edits</c> and <c>/v1/images/variations</c>: the official OpenAI .NET SDK against them (b64_json and url),
/// raw multipart requests for what the SDK does not send (extensions, streaming), and their errors.
/// </summary>
public sealed class ImageEditsTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private HttpClient Http => shared.Instance.Http;

    /// <summary>A mask whose left half is fully transparent (edit there) and right half opaque (keep).</summary>
    private static byte[] LeftHalfMask(int width, int height) =>
        Images.Png(width, height, (x, _) => x < width / 2 ? ((byte)0, (byte)0, (byte)0, (byte)0) : ((byte)0, (byte)0, (byte)0, (byte)255));

    private static MultipartFormDataContent Form(byte[]? image, params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        if (image is not null) form.Add(File(image), "image", "image.png");
        foreach (var (name, value) in fields) form.Add(new StringContent(value), name);
        return form;
    }

    private static ByteArrayContent File(byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        return content;
    }

    private static byte[] FirstImage(JsonElement json) => Convert.FromBase64String(json.GetProperty("data")[0].GetProperty("b64_json").GetString()!);

    [Fact]
    public async Task Sdk_edit_with_a_mask_as_b64_json_and_as_url()
    {
        var client = OpenAiSdkTests.Client(shared.Instance.Address, "tiny");
        using (var image = new MemoryStream(Images.Picture(64, 64)))
        using (var mask = new MemoryStream(LeftHalfMask(64, 64)))
        {
            var result = await client.GenerateImageEditsAsync(image, "image.png", "a yellow star on the left", mask, "mask.png", 2,
                new ImageEditOptions { ResponseFormat = GeneratedImageFormat.Bytes, Size = new GeneratedImageSize(64, 64) });
            Assert.Equal(2, result.Value.Count);
            foreach (var edited in result.Value)
            {
                var png = edited.ImageBytes.ToArray();
                Assert.True(Images.IsPng(png));
                Assert.Equal((64, 64), (Images.Decode(png).Width, Images.Decode(png).Height));
                Assert.Equal("a yellow star on the left", edited.RevisedPrompt);
                // The PNG says it was an inpainting at strength 1 (the default with a mask).
                Assert.Contains("Denoising strength: 1", Images.PngText(png, "parameters"));
            }
        }
        using (var image = new MemoryStream(Images.Picture(64, 64)))
        {
            var result = await client.GenerateImageEditAsync(image, "image.png", "a green square",
                new ImageEditOptions { ResponseFormat = GeneratedImageFormat.Uri });
            var png = await Http.GetByteArrayAsync(result.Value.ImageUri);
            // No size: the image's own size. No mask: img2img of the whole picture at the documented 0.8.
            Assert.Equal((64, 64), (Images.Decode(png).Width, Images.Decode(png).Height));
            Assert.Contains("Denoising strength: 0.8", Images.PngText(png, "parameters"));
        }
    }

    [Fact]
    public async Task Sdk_variation_as_b64_json_and_as_url()
    {
        var client = OpenAiSdkTests.Client(shared.Instance.Address, "tiny");
        using (var image = new MemoryStream(Images.Picture(96, 64)))
        {
            var result = await client.GenerateImageVariationsAsync(image, "picture.png", 2, new ImageVariationOptions { ResponseFormat = GeneratedImageFormat.Bytes });
            Assert.Equal(2, result.Value.Count);
            Assert.All(result.Value, v => Assert.Equal((96, 64), (Images.Decode(v.ImageBytes.ToArray()).Width, Images.Decode(v.ImageBytes.ToArray()).Height)));
            Assert.Contains("Denoising strength: 0.6", Images.PngText(result.Value[0].ImageBytes.ToArray(), "parameters"));
        }
        using (var image = new MemoryStream(Images.Picture(64, 64)))
        {
            var result = await client.GenerateImageVariationAsync(image, "picture.png", new ImageVariationOptions { ResponseFormat = GeneratedImageFormat.Uri });
            Assert.StartsWith(new Uri(shared.Instance.Address, "v1/images/files/").ToString(), result.Value.ImageUri.ToString());
            Assert.True(Images.IsPng(await Http.GetByteArrayAsync(result.Value.ImageUri)));
        }
    }

    [Fact]
    public async Task Sdk_edit_errors_carry_the_status_and_the_field()
    {
        var client = OpenAiSdkTests.Client(shared.Instance.Address, "tiny");
        using var image = new MemoryStream(Images.Picture(64, 64));
        using var mask = new MemoryStream(LeftHalfMask(32, 32));
        var bad = await Assert.ThrowsAsync<ClientResultException>(() => client.GenerateImageEditAsync(image, "image.png", "x", mask, "mask.png"));
        Assert.Equal(400, bad.Status);
        Assert.Contains("mask", bad.Message);
    }

    [Fact]
    public async Task Extensions_size_auto_rounding_and_several_images()
    {
        // shapes makes multiples of 32: a 70x70 picture with size auto comes back 64x64 (rounded down).
        using var response = await Http.PostAsync("v1/images/edits", Form(Images.Picture(70, 70),
            ("model", "shapes"), ("prompt", "a red circle on a blue background"), ("size", "auto"), ("response_format", "b64_json"),
            ("strength", "0.5"), ("seed", "3"), ("steps", "10"), ("guidance_scale", "5"), ("scheduler", "euler"), ("negative_prompt", "green")));
        var json = await Json.ReadAsync(response, 200);
        var png = FirstImage(json);
        Assert.Equal((64, 64), (Images.Decode(png).Width, Images.Decode(png).Height));
        // A picture under one multiple has nothing to round down to: refused naming the image (issue 20).
        using var small = await Http.PostAsync("v1/images/edits", Form(Images.Picture(20, 20), ("model", "shapes"), ("prompt", "x"), ("size", "auto")));
        var error = Json.Error(await Json.ReadAsync(small, 400));
        Assert.Equal("image", error.GetProperty("param").GetString());
        Assert.StartsWith("image is 20x20 pixels", error.GetProperty("message").GetString());
        Assert.Equal(3, json.GetProperty("seeds")[0].GetInt64());
        var parameters = Images.PngText(png, "parameters")!;
        Assert.Contains("Negative prompt: green", parameters);
        Assert.Contains("Steps: 10, Sampler: Euler, CFG scale: 5, Seed: 3", parameters);
        Assert.Contains("Denoising strength: 0.5", parameters);

        // image[] with two files: the first is edited, and the reply says so.
        var form = Form(null, ("model", "tiny"), ("prompt", "x"), ("response_format", "b64_json"), ("steps", "4"));
        form.Add(File(Images.Picture(64, 64)), "image[]", "first.png");
        form.Add(File(Images.Picture(96, 64)), "image[]", "second.png");
        using var several = await Http.PostAsync("v1/images/edits", form);
        var reply = await Json.ReadAsync(several, 200);
        Assert.Equal((64, 64), (Images.Decode(FirstImage(reply)).Width, Images.Decode(FirstImage(reply)).Height));
        Assert.Contains("edits the first ('first.png')", reply.GetProperty("warnings")[0].GetString());
    }

    [Fact]
    public async Task Edit_streams_partial_images_then_the_result()
    {
        using var response = await Http.PostAsync("v1/images/edits", Form(Images.Picture(64, 64),
            ("model", "tiny"), ("prompt", "x"), ("stream", "true"), ("partial_images", "2"), ("steps", "8")));
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        var events = text.Split("\n").Where(l => l.StartsWith("event: ", StringComparison.Ordinal)).Select(l => l[7..]).ToList();
        // The names the openai SDKs' ImageEditStreamEvent types carry, in both the event line and each payload's type.
        Assert.Equal(["image_edit.partial_image", "image_edit.partial_image", "image_edit.completed"], events);
        var payloads = text.Split("\n").Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => JsonDocument.Parse(l[6..]).RootElement).ToList();
        Assert.Equal(events, payloads.Select(p => p.GetProperty("type").GetString()));
        Assert.All(payloads, p => Assert.Equal("high", p.GetProperty("quality").GetString()));
        Assert.Equal(0, payloads[^1].GetProperty("usage").GetProperty("output_tokens").GetInt32());
    }

    [Fact]
    public async Task Image_transparency_is_the_mask_when_none_is_sent()
    {
        // dall-e-2's rule: the picture's own alpha-0 pixels are the area to edit; the rest is kept (pasted back).
        var picture = Images.Png(64, 64, (x, y) => x < 32 ? ((byte)0, (byte)0, (byte)0, (byte)0) : ((byte)200, (byte)40, (byte)40, (byte)255));
        using var response = await Http.PostAsync("v1/images/edits", Form(picture, ("model", "tiny"), ("prompt", "x"), ("response_format", "b64_json"), ("steps", "4")));
        var png = FirstImage(await Json.ReadAsync(response, 200));
        Assert.Contains("Denoising strength: 1", Images.PngText(png, "parameters"));
        var (_, _, rgb) = Images.Decode(png);
        Assert.Equal([200, 40, 40], rgb.AsSpan((10 * 64 + 60) * 3, 3).ToArray());
    }

    private static async Task AssertError(HttpResponseMessage response, int status, string body)
    {
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(body, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Errors_name_the_field()
    {
        await AssertError(await Http.PostAsync("v1/images/edits", Form(null, ("prompt", "x"))), 400,
            """{"error":{"message":"Missing required parameter: 'image' (a PNG, JPEG or WebP file).","type":"invalid_request_error","param":"image","code":"missing_required_parameter"}}""");
        await AssertError(await Http.PostAsync("v1/images/variations", Form(null, ("n", "1"))), 400,
            """{"error":{"message":"Missing required parameter: 'image' (a PNG, JPEG or WebP file).","type":"invalid_request_error","param":"image","code":"missing_required_parameter"}}""");
        await AssertError(await Http.PostAsync("v1/images/edits", Form(Images.Picture(64, 64))), 400,
            """{"error":{"message":"Missing required parameter: 'prompt'.","type":"invalid_request_error","param":"prompt","code":"missing_required_parameter"}}""");
        await AssertError(await Http.PostAsync("v1/images/edits", Form("not a picture"u8.ToArray(), ("prompt", "x"))), 400,
            """{"error":{"message":"Invalid 'image': 13 bytes that are not a PNG, JPEG or WebP image.","type":"invalid_request_error","param":"image","code":"invalid_image"}}""");
        // A picture larger than the engine makes is refused from its header (a small file: one colour compresses well).
        byte[] huge;
        using (var bitmap = new SkiaSharp.SKBitmap(4100, 4100))
        {
            bitmap.Erase(SkiaSharp.SKColors.Blue);
            using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
            huge = data.ToArray();
        }
        await AssertError(await Http.PostAsync("v1/images/variations", Form(huge)), 400,
            """{"error":{"message":"Invalid 'image': 4100x4100 is more than the 4096x4096 pixels this server reads; scale it down first.","type":"invalid_request_error","param":"image","code":"invalid_image"}}""");
        var truncated = Images.Picture(64, 64)[..60];
        var cut = await Http.PostAsync("v1/images/variations", Form(truncated));
        Assert.Equal(400, (int)cut.StatusCode);
        Assert.Contains("\"param\":\"image\"", await cut.Content.ReadAsStringAsync());

        var badMask = Form(Images.Picture(64, 64), ("prompt", "x"));
        badMask.Add(File(LeftHalfMask(32, 32)), "mask", "mask.png");
        await AssertError(await Http.PostAsync("v1/images/edits", badMask), 400,
            """{"error":{"message":"Invalid 'mask': it is 32x32 but the image is 64x64; the mask must be the same size as the image.","type":"invalid_request_error","param":"mask","code":"invalid_value"}}""");
        var opaqueMask = Form(Images.Picture(64, 64), ("prompt", "x"));
        opaqueMask.Add(File(Images.Picture(64, 64)), "mask", "mask.png");
        await AssertError(await Http.PostAsync("v1/images/edits", opaqueMask), 400,
            """{"error":{"message":"Invalid 'mask': no pixel is fully transparent. Its fully transparent pixels (alpha 0) mark the area to edit: send a PNG with transparency (white = repaint masks go to /sdapi/v1/img2img).","type":"invalid_request_error","param":"mask","code":"invalid_value"}}""");
        await AssertError(await Http.PostAsync("v1/images/edits", Form(Images.Picture(64, 64), ("prompt", "x"), ("strength", "1.5"))), 400,
            """{"error":{"message":"'strength' must be between 0 and 1; got 1.5.","type":"invalid_request_error","param":"strength","code":"invalid_value"}}""");
        await AssertError(await Http.PostAsync("v1/images/edits", Form(Images.Picture(64, 64), ("prompt", "x"), ("strength", "0"))), 400,
            """{"error":{"message":"strength must be in (0, 1].","type":"invalid_request_error","param":"strength","code":"invalid_value"}}""");
        foreach (var (contentType, text) in new[]
        {
            ("multipart/form-data", "no boundary"),
            ("multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx"),
        })
        {
            var content = new StringContent(text);
            content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
            using var broken = await Http.PostAsync("v1/images/edits", content);
            var error = Json.Error(await Json.ReadAsync(broken, 400));
            Assert.Equal("invalid_multipart", error.GetProperty("code").GetString());
        }
        await AssertError(await Http.PostAsync("v1/images/edits", Form(null, ("prompt", "x"), ("image", "circle.png"))), 400,
            """{"error":{"message":"Invalid 'image': send the picture as a file (multipart/form-data), not as a text field.","type":"invalid_request_error","param":"image","code":"invalid_value"}}""");
        await AssertError(await Http.PostAsync("v1/images/edits", Form(Images.Picture(64, 64), ("prompt", "x"), ("mask", "mask.png"))), 400,
            """{"error":{"message":"Invalid 'mask': send it as a file (a PNG with transparency), not as a text field.","type":"invalid_request_error","param":"mask","code":"invalid_value"}}""");
        await AssertError(await Json.PostAsync(Http, "v1/images/edits", new { prompt = "x", image = "https://example.com/a.png" }), 415,
            """{"error":{"message":"This endpoint takes multipart/form-data (the image as a file); got 'application/json; charset=utf-8'.","type":"invalid_request_error","param":null,"code":"unsupported_media_type"}}""");
    }

    [Fact]
    public async Task Oversized_image_file_is_413_naming_the_field()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], MaxImageBytes = 4096 });
        var big = Images.Png(96, 96, (x, y) => ((byte)(x * 7 + y * 13), (byte)(x * y), (byte)(x ^ y), (byte)255));
        Assert.True(big.Length > 4096, $"the test picture is only {big.Length} bytes");
        using var response = await server.Http.PostAsync("v1/images/edits", Form(big, ("prompt", "x")));
        await AssertError(response, 413,
            $$$"""{"error":{"message":"'image' is {{{big.Length}}} bytes; this server accepts image files up to 4096 bytes.","type":"invalid_request_error","param":"image","code":"file_too_large"}}""");
    }
}
