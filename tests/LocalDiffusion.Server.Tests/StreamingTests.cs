using System.Text.Json;

namespace LocalDiffusion.Server.Tests;

/// <summary><c>stream: true</c>: server-sent events in OpenAI's shapes (the .NET SDK has no streaming image call, so raw HTTP).</summary>
public sealed class StreamingTests(SharedServer shared) : IClassFixture<SharedServer>
{
    [Fact]
    public async Task Partial_images_then_completed()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/images/generations")
        {
            Content = Json.Body(new { model = "shapes", prompt = "a red circle on a blue background", stream = true, partial_images = 2, steps = 12, seed = 1 }),
        };
        using var response = await shared.Instance.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = await ReadEventsAsync(response);

        Assert.Equal(["image_generation.partial_image", "image_generation.partial_image", "image_generation.completed"], events.Select(e => e.Name));
        for (var i = 0; i < 2; i++)
        {
            var partial = events[i].Data;
            Assert.Equal("image_generation.partial_image", partial.GetProperty("type").GetString());
            Assert.Equal(i, partial.GetProperty("partial_image_index").GetInt32());
            Assert.True(Images.IsPng(Convert.FromBase64String(partial.GetProperty("b64_json").GetString()!)));
        }
        var completed = events[2].Data;
        var png = Convert.FromBase64String(completed.GetProperty("b64_json").GetString()!);
        Assert.Equal("64x64", completed.GetProperty("size").GetString());
        Assert.Equal("png", completed.GetProperty("output_format").GetString());
        Assert.Equal(1, completed.GetProperty("seed").GetInt64());
        Assert.NotNull(Images.PngText(png, "parameters"));
        // Previews show the picture forming: the last one is closer to the final image than the first.
        var final = Images.Decode(png).Rgb;
        double Distance(int i) => Mse(Images.Decode(Convert.FromBase64String(events[i].Data.GetProperty("b64_json").GetString()!)).Rgb, final);
        Assert.True(Distance(1) < Distance(0), $"preview 0 is {Distance(0):F0} from the final image, preview 1 {Distance(1):F0}");
    }

    [Fact]
    public async Task Progress_events_when_asked_and_errors_before_the_stream_are_json()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/images/generations")
        {
            Content = Json.Body(new { model = "tiny", prompt = "x", size = "64x64", stream = true, stream_progress = true, steps = 5 }),
        };
        using var response = await shared.Instance.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var events = await ReadEventsAsync(response);
        // One event per UNet evaluation: tiny's PLMS makes 6 for 5 steps (its warm-up step evaluates twice).
        var progress = events.Where(e => e.Name == "localdiffusion.progress").Select(e => e.Data).ToList();
        var total = progress[^1].GetProperty("total_steps").GetInt32();
        Assert.InRange(total, 5, 6);
        Assert.Equal(Enumerable.Range(1, total), progress.Select(p => p.GetProperty("step").GetInt32()));
        Assert.Equal("image_generation.completed", events[^1].Name);

        using var bad = await Json.PostAsync(shared.Instance.Http, "v1/images/generations", new { prompt = "x", stream = true, partial_images = 4 });
        var error = await Json.ReadAsync(bad, 400);
        Assert.Equal("partial_images", error.GetProperty("error").GetProperty("param").GetString());
    }

    private static async Task<List<(string Name, JsonElement Data)>> ReadEventsAsync(HttpResponseMessage response)
    {
        var events = new List<(string, JsonElement)>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string? name = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add((name!, JsonDocument.Parse(line[6..]).RootElement.Clone()));
        }
        return events;
    }

    private static double Mse(byte[] a, byte[] b)
    {
        double sum = 0;
        for (var i = 0; i < a.Length; i++) sum += (a[i] - b[i]) * (a[i] - b[i]);
        return sum / a.Length;
    }
}
