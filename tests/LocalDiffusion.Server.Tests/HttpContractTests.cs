using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// What every route owes a client beyond its own fields: OpenAI-shaped bodies on 404, 405 (with Allow) and 413, HEAD
/// wherever GET works, 400 naming the field for text that is not valid Unicode, strict JSON types on the OpenAI API,
/// and the documented limits (steps 1–1000, the pixel cap) as the code enforces them.
/// </summary>
public sealed class HttpContractTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private HttpClient Http => shared.Instance.Http;

    private static async Task<System.Text.Json.JsonElement> ErrorAsync(HttpResponseMessage response, int status)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return Json.Error(await Json.ReadAsync(response, status));
    }

    [Fact]
    public async Task Unknown_routes_and_methods_answer_openai_errors()
    {
        foreach (var path in new[] { "v1/nothing", "sdapi/v1/nothing", "ui/missing.js", "v1/images/files/../../etc/passwd" })
        {
            var error = await ErrorAsync(await Http.GetAsync(path), 404);
            // Under /sdapi the body is A1111's (its API answers an unknown route with FastAPI's HTTPException).
            Assert.Equal(path.StartsWith("sdapi", StringComparison.Ordinal) ? "HTTPException" : "invalid_request_error",
                error.TryGetProperty("type", out var type) ? type.GetString() : error.GetProperty("a1111_error").GetString());
            Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        }
        using var get = await Http.GetAsync("v1/images/generations");
        var notAllowed = await ErrorAsync(get, 405);
        Assert.Equal("method_not_allowed", notAllowed.GetProperty("code").GetString());
        Assert.Equal(["POST"], get.Content.Headers.Allow);
        Assert.Contains("allowed: POST", notAllowed.GetProperty("message").GetString());
        using var delete = await Http.DeleteAsync("health");
        await ErrorAsync(delete, 405);
        Assert.Contains("GET", delete.Content.Headers.Allow);
    }

    [Fact]
    public async Task Head_works_wherever_get_does()
    {
        foreach (var path in new[] { "health", "v1/models", "/", "ui/app.js", "sdapi/v1/samplers", "metrics" })
        {
            using var head = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        }
        using var post = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "v1/images/generations"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
    }

    [Fact]
    public async Task Every_oversize_body_is_413()
    {
        // 60 MiB of multipart upload, over Kestrel's 50 MiB cap on a whole body.
        // Sent as curl sends a large upload (Expect: 100-continue): the server refuses it before a byte of it is sent.
        using var upload = new HttpRequestMessage(HttpMethod.Post, "v1/images/edits")
        {
            Content = new MultipartFormDataContent { { new StringContent("x"), "prompt" }, { new ByteArrayContent(new byte[60 << 20]), "image", "big.png" } },
        };
        upload.Headers.ExpectContinue = true;
        var error = await ErrorAsync(await Http.SendAsync(upload), 413);
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());
        Assert.Equal("request_too_large", (await ErrorAsync(await Http.PostAsync("v1/images/generations", Json.Raw($"{{\"prompt\":\"{new string('a', 2 << 20)}\"}}")), 413)).GetProperty("code").GetString());
    }

    public static TheoryData<string, string, string> BadText => new()
    {
        { "v1/images/generations", "prompt", """{"prompt":"x\ud83d"}""" },
        { "v1/images/generations", "negative_prompt", """{"prompt":"x","negative_prompt":"\udc00y"}""" },
        { "v1/images/generations", "model", """{"prompt":"x","model":"\ud800"}""" },
        { "v1/images/generations", "size", """{"prompt":"x","size":"64x64\udfff"}""" },
        { "sdapi/v1/txt2img", "sampler_name", """{"prompt":"x","sampler_name":"Euler\ud83d"}""" },
        { "sdapi/v1/txt2img", "override_settings.sd_model_checkpoint", """{"prompt":"x","override_settings":{"sd_model_checkpoint":"\ud83d"}}""" },
        { "sdapi/v1/options", "sd_model_checkpoint", """{"sd_model_checkpoint":"\ud83dshapes"}""" },
        { "sdapi/v1/txt2img", "styles[1]", """{"prompt":"x","styles":["a","\ud83d"]}""" },
    };

    [Theory]
    [MemberData(nameof(BadText))]
    public async Task A_lone_surrogate_is_400_naming_the_field(string path, string field, string json)
    {
        var error = await ErrorAsync(await Http.PostAsync(path, Json.Raw(json)), 400);
        Assert.Equal("invalid_json", error.GetProperty("code").GetString());
        Assert.Equal(field, error.GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("v1/images/generations", "prompt", "{\"prompt\":\"x\xff\xfe\"}")]
    [InlineData("v1/images/generations", "negative_prompt", "{\"prompt\":\"x\",\"negative_prompt\":\"\xc3\"}")]
    [InlineData("sdapi/v1/txt2img", "sampler_name", "{\"prompt\":\"x\",\"sampler_name\":\"\xed\xa0\x80\"}")]
    public async Task Invalid_utf8_is_400_naming_the_field(string path, string field, string latin1)
    {
        // The string's chars stand for raw bytes, so the body holds exactly the invalid UTF-8 a broken client sends.
        var content = new ByteArrayContent(Encoding.Latin1.GetBytes(latin1));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var error = await ErrorAsync(await Http.PostAsync(path, content), 400);
        Assert.Equal("invalid_json", error.GetProperty("code").GetString());
        Assert.Equal(field, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Openai_types_are_strict_and_a1111_types_are_lenient()
    {
        foreach (var (field, value) in new (string, object)[] { ("n", "2"), ("steps", "4"), ("seed", "1"), ("guidance_scale", "5"), ("stream", "true") })
        {
            var body = new Dictionary<string, object> { ["prompt"] = "x", [field] = value };
            var error = await ErrorAsync(await Json.PostAsync(Http, "v1/images/generations", body), 400);
            Assert.Equal("invalid_type", error.GetProperty("code").GetString());
            Assert.Equal(field, error.GetProperty("param").GetString());
        }
        // A1111's pydantic models coerce numeric strings; so does this server there (and in multipart forms, where all is text).
        await Json.ReadAsync(await Json.PostAsync(Http, "sdapi/v1/txt2img", new { prompt = "x", steps = "2", seed = "1" }), 200);
    }

    [Fact]
    public async Task Steps_take_the_documented_range()
    {
        // 1000 steps run (seen from the first progress event; the client then leaves, which cancels the rest).
        using (var request = new HttpRequestMessage(HttpMethod.Post, "v1/images/generations")
        {
            Content = Json.Body(new { prompt = "x", model = "tiny", steps = 1000, scheduler = "euler", stream = true, stream_progress = true }),
        })
        using (var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var events = new StreamReader(await response.Content.ReadAsStreamAsync());
            string? line;
            while ((line = await events.ReadLineAsync()) is not null && !line.StartsWith("data: ", StringComparison.Ordinal)) { }
            Assert.Equal(1000, System.Text.Json.JsonDocument.Parse(line![6..]).RootElement.GetProperty("total_steps").GetInt32());
        }
        Assert.Equal("steps", (await ErrorAsync(await Json.PostAsync(Http, "v1/images/generations", new { prompt = "x", steps = 1001 }), 400)).GetProperty("param").GetString());
        // Some scheduler configs reach past the last training timestep sooner (diffusers fails there too): the error says how far.
        var plms = await ErrorAsync(await Json.PostAsync(Http, "v1/images/generations", new { prompt = "x", model = "tiny", steps = 1000 }), 400);
        Assert.Equal("steps", plms.GetProperty("param").GetString());
        Assert.Equal("steps 1000 with PLMS: 1000 steps with leading spacing and steps_offset 1 reach timestep 1000, past the last training timestep 999; at most 999 steps work with this scheduler config.",
            plms.GetProperty("message").GetString());
        Assert.Equal("steps", (await ErrorAsync(await Json.PostAsync(Http, "v1/images/generations", new { prompt = "x", steps = 0 }), 400)).GetProperty("param").GetString());
    }
}
