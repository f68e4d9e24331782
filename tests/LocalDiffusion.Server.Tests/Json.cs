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

    public static Task<HttpResponseMessage> PostAsync(HttpClient http, string path, object body, CancellationToken cancellationToken = default) =>
        http.PostAsync(path, Body(body), cancellationToken);

    public static async Task<JsonElement> GetAsync(HttpClient http, string path) => await http.GetFromJsonAsync<JsonElement>(path);
}
