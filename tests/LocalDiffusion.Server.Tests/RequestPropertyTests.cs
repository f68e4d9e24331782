using System.Text;
using System.Text.Json;
using CsCheck;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// Property tests over the request space of both APIs (CsCheck, a bounded number of random bodies per run): every body
/// either succeeds with the pictures it asked for, or is refused with a 4xx in OpenAI's error shape whose param (when it
/// has one) names a field the body sent; never a 5xx, never a body of another shape. Fields mix valid values, values
/// out of range, values of the wrong type and garbage text.
/// </summary>
public sealed class RequestPropertyTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private HttpClient Http => shared.Instance.Http;

    // Each field: absent (null) or its raw JSON text.
    private static Gen<string?> Field(params string?[] values) => Gen.OneOf(values);

    private static readonly Gen<(string Path, string Body, string[] Fields)> OpenAiBodies =
        Gen.Select(
            Field("\"a red circle\"", "\"\"", "\"(red:1.5) circle [blue]\"", "\"x\\ud83d\\ude00y\"", "42", "null", null, "\"" + new string('a', 400) + "\""),
            Field("1", "2", "0", "11", "\"2\"", "1.5", null),
            Field("\"64x64\"", "\"auto\"", "\"96x64\"", "\"60x64\"", "\"1024x1024\"", "\"big\"", "\"0x0\"", "64", null),
            Field("1", "2", "0", "1001", "-3", "\"2\"", null),
            Field("0", "1", "7.5", "-1", "101", "\"7\"", null),
            Field("\"euler\"", "\"DPM++ 2M Karras\"", "\"flow_euler\"", "\"bogus\"", "3", null),
            Field("\"tiny\"", "\"shapes\"", "\"gpt-image-1\"", "\"dall-e-3\"", "\"nope\"", null),
            Field("\"b64_json\"", "\"url\"", "\"jpg\"", null),
            (prompt, n, size, steps, guidance, scheduler, model, format) =>
        {
            var fields = new (string Name, string? Value)[]
            {
                ("prompt", prompt), ("n", n), ("size", size), ("steps", steps), ("guidance_scale", guidance),
                ("scheduler", scheduler), ("model", model), ("response_format", format),
            };
            var present = fields.Where(f => f.Value is not null).ToArray();
            return ("v1/images/generations", "{" + string.Join(",", present.Select(f => $"\"{f.Name}\":{f.Value}")) + "}", present.Select(f => f.Name).ToArray());
            });

    private static readonly Gen<(string Path, string Body, string[] Fields)> A1111Bodies =
        Gen.Select(
            Field("\"a red circle\"", "\"\"", "7", null),
            Field("1", "2", "0", "1001", "\"2\"", "\"x\"", null),
            Field("64", "96", "60", "4096", "\"64\"", "-8", null),
            Field("\"Euler a\"", "\"DPM++ 2M\"", "\"bogus\"", null),
            Field("\"Karras\"", "\"Automatic\"", "\"SGM Uniform\"", null),
            Field("1", "3", "0", "65", null),
            Field("-1", "7", "4294967296", "\"7\"", null),
            (prompt, steps, width, sampler, scheduler, batch, seed) =>
        {
            var fields = new (string Name, string? Value)[]
            {
                ("prompt", prompt), ("steps", steps), ("width", width), ("height", width), ("sampler_name", sampler),
                ("scheduler", scheduler), ("batch_size", batch), ("seed", seed),
            };
            var present = fields.Where(f => f.Value is not null).ToArray();
            return ("sdapi/v1/txt2img", "{" + string.Join(",", present.Select(f => $"\"{f.Name}\":{f.Value}")) + "}", present.Select(f => f.Name).ToArray());
            });

    [Fact]
    public async Task Every_random_request_succeeds_or_is_a_4xx_naming_a_field_it_sent() =>
        await Gen.OneOf(OpenAiBodies, A1111Bodies).SampleAsync(async c =>
        {
            // Few steps where they are valid keep each success cheap; the tiny model draws 64×64 in milliseconds.
            using var response = await Http.PostAsync(c.Path, new StringContent(c.Body, Encoding.UTF8, "application/json"));
            var text = await response.Content.ReadAsStringAsync();
            var status = (int)response.StatusCode;
            Assert.True(status is 200 or (>= 400 and < 500), $"HTTP {status} for {c.Path} {c.Body}: {text}");
            var json = JsonDocument.Parse(text).RootElement;
            if (status == 200)
            {
                Assert.True(json.TryGetProperty("data", out _) || json.TryGetProperty("images", out _), $"no pictures for {c.Body}: {text}");
                return;
            }
            var error = Json.Error(json);
            Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
            if (error.TryGetProperty("type", out var type)) Assert.Equal("invalid_request_error", type.GetString());
            else Assert.Equal("HTTPException", error.GetProperty("a1111_error").GetString()); // A1111's shape on /sdapi
            if (error.GetProperty("param").GetString() is { } param && status == 400)
                // A field the body sent, the size a width/height or size became, or a required one it left out.
                Assert.True(c.Fields.Contains(param.Split('.')[0]) || param is "size" or "width" or "height"
                    || error.GetProperty("code").GetString() == "missing_required_parameter",
                    $"param '{param}' is not a field of {c.Body}: {text}");
        }, iter: 400, threads: 1);
}
