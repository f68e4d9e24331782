using LocalDiffusion.Errors;
using System.Net;

namespace LocalDiffusion.Server.Tests;

/// <summary>Every error status the API gives, with its exact OpenAI-shaped body.</summary>
public sealed class ErrorResponseTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private HttpClient Http => shared.Instance.Http;

    private static async Task AssertError(HttpResponseMessage response, int status, string body)
    {
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(body, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Bad_fields_are_400_naming_the_field()
    {
        await AssertError(await Json.PostAsync(Http, "v1/images/generations", new { prompt = "x", background = "transparent" }), 400,
            """{"error":{"message":"background 'transparent' is not supported: this model draws opaque images. Use 'opaque' or 'auto'.","type":"invalid_request_error","param":"background","code":"invalid_value"}}""");
        await AssertError(await Json.PostAsync(Http, "v1/images/generations", new { n = 1 }), 400,
            """{"error":{"message":"Missing required parameter: 'prompt'.","type":"invalid_request_error","param":"prompt","code":"missing_required_parameter"}}""");
        await AssertError(await Json.PostAsync(Http, "v1/images/generations", new { prompt = new string('a', 32_001) }), 400,
            """{"error":{"message":"Invalid 'prompt': string too long. Expected a string with maximum length 32000, but got a string with length 32001 instead.","type":"invalid_request_error","param":"prompt","code":"string_above_max_length"}}""");
        await AssertError(await Json.PostAsync(Http, "v1/images/generations", new { prompt = "x", n = 11 }), 400,
            """{"error":{"message":"'n' must be between 1 and 10; got 11.","type":"invalid_request_error","param":"n","code":"invalid_value"}}""");
        await AssertError(await Json.PostAsync(Http, "v1/images/generations", new { prompt = "x", response_format = "jpg" }), 400,
            """{"error":{"message":"Invalid value 'jpg' for 'response_format'; supported values are: 'url', 'b64_json'.","type":"invalid_request_error","param":"response_format","code":"invalid_value"}}""");
        await AssertError(await Json.PostAsync(Http, "v1/images/generations", new { prompt = "x", size = "big" }), 400,
            """{"error":{"message":"Invalid value 'big' for 'size': use 'auto' or WIDTHxHEIGHT, e.g. '512x512'.","type":"invalid_request_error","param":"size","code":"invalid_value"}}""");
        await AssertError(await Json.PostAsync(Http, "v1/images/generations", new { prompt = "x", steps = "many" }), 400,
            """{"error":{"message":"'steps' must be an integer; got the string \"many\".","type":"invalid_request_error","param":"steps","code":"invalid_type"}}""");
        await AssertError(await Http.PostAsync("v1/images/generations", Json.Raw("{\"prompt\": ")), 400,
            """{"error":{"message":"The request body is not valid JSON: Expected depth to be zero at the end of the JSON payload. There is an open JSON object or array that should be closed. LineNumber: 0 | BytePositionInLine: 11.","type":"invalid_request_error","param":null,"code":"invalid_json"}}""");
    }

    [Fact]
    public async Task Engine_argument_errors_are_400_naming_the_field()
    {
        // The tiny-static model makes only 64x64 images; the engine refuses other sizes before any work, naming the file.
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Model("test", "tiny-static")] });
        using var response = await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = "x", size = "128x64", steps = 2 });
        var json = await Json.ReadAsync(response, 400);
        var error = json.GetProperty("error");
        Assert.Equal("size", error.GetProperty("param").GetString());
        Assert.Contains("only makes 64x64 images; 128x64 was requested", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Unknown_model_is_404()
    {
        await AssertError(await Json.PostAsync(Http, "v1/images/generations", new { prompt = "x", model = "sd-xl" }), 404,
            """{"error":{"message":"The model 'sd-xl' does not exist on this server; served models: shapes, tiny.","type":"invalid_request_error","param":"model","code":"model_not_found"}}""");
        await AssertError(await Http.GetAsync("v1/images/files/0123456789abcdef0123456789abcdef.png"), 404,
            """{"error":{"message":"No image '0123456789abcdef0123456789abcdef.png' on this server (image URLs expire after 60 minutes).","type":"invalid_request_error","param":null,"code":"image_not_found"}}""");
    }

    [Fact]
    public async Task Files_route_serves_only_issued_names()
    {
        foreach (var name in new[] { "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "index.html", "0123456789ABCDEF0123456789ABCDEF.png", "0123456789abcdef0123456789abcdef.png.partial" })
            Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync("v1/images/files/" + name)).StatusCode);
    }

    [Fact]
    public async Task Oversized_body_is_413()
    {
        await AssertError(await Json.PostAsync(Http, "v1/images/generations", new { prompt = new string('a', 2 << 20) }), 413,
            """{"error":{"message":"The request body is larger than the 1048576 bytes this server accepts.","type":"invalid_request_error","param":null,"code":"request_too_large"}}""");
    }

    [Fact]
    public async Task Missing_or_wrong_api_key_is_401()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], ApiKey = "sesame" });
        const string body = """{"error":{"message":"Missing or incorrect API key: send 'Authorization: Bearer <key>' with the key the server was started with.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}""";
        await AssertError(await server.Http.GetAsync("v1/models"), 401, body);
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "v1/models") { Headers = { { "Authorization", "Bearer open" } } };
        await AssertError(await server.Http.SendAsync(wrong), 401, body);
        using var right = new HttpRequestMessage(HttpMethod.Get, "v1/models") { Headers = { { "Authorization", "Bearer sesame" } } };
        Assert.Equal(HttpStatusCode.OK, (await server.Http.SendAsync(right)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/")).StatusCode);
    }

    [Fact]
    public async Task Loading_model_is_503_with_retry_after()
    {
        var gate = new TaskCompletionSource();
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], ModelLoadGate = gate.Task }, waitForModels: false);
        try
        {
            using var response = await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = "x" });
            await AssertError(response, 503,
                """{"error":{"message":"The model 'tiny' is still loading; try again shortly.","type":"server_error","param":"model","code":"model_loading"}}""");
            Assert.Equal("5", response.Headers.GetValues("Retry-After").Single());
        }
        finally
        {
            gate.SetResult();
        }
    }

    [Fact]
    public async Task Model_that_fails_to_load_is_500_without_a_stack_trace()
    {
        var broken = Path.Combine(Path.GetTempPath(), "ld-broken-" + Guid.NewGuid().ToString("N"), "broken");
        CopyDirectory(Repo.Tiny, broken);
        await File.WriteAllBytesAsync(Path.Combine(broken, "unet", "model.onnx"), [1, 2, 3, 4]);
        try
        {
            await using var server = await TestServer.StartAsync(new ServerOptions { Models = [broken] });
            using var response = await Json.PostAsync(server.Http, "v1/images/generations", new { prompt = "x" });
            var json = await Json.ReadAsync(response, 500);
            var error = json.GetProperty("error");
            Assert.Equal("server_error", error.GetProperty("type").GetString());
            Assert.Equal("model_load_failed", error.GetProperty("code").GetString());
            var message = error.GetProperty("message").GetString()!;
            Assert.Contains(Path.Combine("unet", "model.onnx"), message);
            Assert.Contains(response.Headers.GetValues("x-request-id").Single(), message);
            Assert.DoesNotContain("   at ", message);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(broken)!, recursive: true);
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}

/// <summary>How the engine's error contract maps to HTTP statuses, exception by exception.</summary>
public sealed class ErrorMappingTests
{
    [Fact]
    public void Engine_exceptions_map_to_their_statuses()
    {
        var numerics = Errors.ErrorMiddleware.Map(
            new GenerationNumericsException(NumericsStage.Scheduler, 3, "NaN/infinity at denoising step 3 of 5 (timestep 600, Euler): …"), "req-1");
        Assert.Equal(500, numerics.Status);
        Assert.Equal("numerical_failure", numerics.Code);
        Assert.Contains("step 3 of 5", numerics.Message);
        Assert.Contains("req-1", numerics.Message);

        var steps = LocalDiffusion.Errors.InvalidRequestException.OutOfRange("Steps", 0, "between 1 and 1000");
        var bad = Errors.ErrorMiddleware.Map(steps, "req-2");
        Assert.Equal((400, "steps", "steps is 0; it must be between 1 and 1000."), (bad.Status, bad.Param, bad.Message));
        // The field by each API's name, from the contract's one table: OpenAI's size is A1111's width.
        var width = LocalDiffusion.Errors.InvalidRequestException.OutOfRange("Width", 100, "a multiple of 8");
        Assert.Equal("size", Errors.ErrorMiddleware.Map(width, "req-4").Param);
        var a1111 = Errors.ErrorMiddleware.Map(width, "req-4", LocalDiffusion.Errors.FrontEnd.Automatic1111);
        Assert.Equal(("width", "width is 100; it must be a multiple of 8.", "HTTPException"), (a1111.Param, a1111.Message, a1111.A1111Error));
        var nan = Errors.ErrorMiddleware.Map(new GenerationNumericsException(NumericsStage.Unet, 2, "NaN"), "req-5", LocalDiffusion.Errors.FrontEnd.Automatic1111);
        Assert.Equal("NansException", nan.A1111Error);

        var bug = Errors.ErrorMiddleware.Map(new InvalidOperationException("secret internals"), "req-3");
        Assert.Equal(500, bug.Status);
        Assert.DoesNotContain("secret", bug.Message);
    }
}
