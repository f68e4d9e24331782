using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace LocalDiffusion.Server.Tests;

internal static class Json
{
    public static StringContent Body(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");

    public static StringContent Raw(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>The response's JSON, after checking its status (the body is in the failure message).</summary>
    public static async Task<JsonElement> ReadAsync(HttpResponseMessage response, int expectedStatus)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == expectedStatus, $"HTTP {(int)response.StatusCode} (expected {expectedStatus}): {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>
    /// The error of a body in either API's shape, as OpenAI's fields (message, param, code): OpenAI's <c>error</c> object as
    /// it is, or AUTOMATIC1111's body (<c>error</c>, <c>detail</c>, <c>body</c>, <c>errors</c>, with <c>field</c> and
    /// <c>code</c>), whose shape is checked on the way.
    /// </summary>
    public static JsonElement Error(JsonElement body)
    {
        var error = body.GetProperty("error");
        if (error.ValueKind == JsonValueKind.Object) return error;
        Assert.Equal(JsonValueKind.String, error.ValueKind);
        var detail = body.GetProperty("detail").GetString()!;
        Assert.Equal("", body.GetProperty("body").GetString());
        Assert.EndsWith(detail, body.GetProperty("errors").GetString());
        return JsonSerializer.SerializeToElement(new
        {
            message = detail,
            param = body.GetProperty("field").GetString(),
            code = body.GetProperty("code").GetString(),
            a1111_error = error.GetString(),
        });
    }

    public static Task<HttpResponseMessage> PostAsync(HttpClient http, string path, object body, CancellationToken cancellationToken = default) =>
        http.PostAsync(path, Body(body), cancellationToken);

    public static async Task<JsonElement> GetAsync(HttpClient http, string path) => await http.GetFromJsonAsync<JsonElement>(path);
}
