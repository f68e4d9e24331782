using System.Net;
using System.Text.Json;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// <c>GET /v1/queue</c> and <c>DELETE /v1/queue/{id}</c>: jobs named by the client's <c>X-LocalDiffusion-Job-Id</c>, their
/// places in the queue, and cancelling a waiting and a running one.
/// </summary>
public sealed class QueueEndpointsTests
{
    private const string Header = "X-LocalDiffusion-Job-Id";

    // Seconds on the shapes model: long enough to be seen running; every test cancels it.
    private static object Slow(string prompt) => new { model = "shapes", prompt, steps = 1000, scheduler = "euler", response_format = "b64_json" };

    private static Task<HttpResponseMessage> PostAsync(HttpClient http, string path, object body, string? jobId)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json.Body(body) };
        if (jobId is not null) request.Headers.TryAddWithoutValidation(Header, jobId);
        return http.SendAsync(request);
    }

    [Fact]
    public async Task Lists_running_and_waiting_jobs_by_id_and_cancels_them()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], MaxQueue = 4, Concurrency = 1 });
        var http = server.Http;
        var blocker = PostAsync(http, "v1/images/generations", Slow("first"), "blocker-1");
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("running").GetInt32() == 1, "the first generation to start");
        var cancelled = PostAsync(http, "v1/images/generations", new { prompt = "a red circle", steps = 2 }, "job_2");
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("waiting").GetInt32() == 1, "the second request to wait");
        var edit = PostAsync(http, "sdapi/v1/img2img", new { prompt = "a blue square", steps = 2, init_images = new[] { Convert.ToBase64String(Images.Picture(64, 64)) } }, "job-3");
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("waiting").GetInt32() == 2, "the third request to wait");

        var queue = await Json.GetAsync(http, "v1/queue");
        var running = Assert.Single(queue.GetProperty("running").EnumerateArray());
        Assert.Equal("blocker-1", running.GetProperty("id").GetString());
        Assert.Equal("shapes", running.GetProperty("model").GetString());
        Assert.Equal("txt2img", running.GetProperty("kind").GetString());
        Assert.Equal(1000, running.GetProperty("total_steps").GetInt32());
        Assert.InRange(running.GetProperty("step").GetInt32(), 0, 1000);
        Assert.Equal([("job_2", 1, "txt2img"), ("job-3", 2, "img2img")], Waiting(queue));

        // A waiting job leaves the queue; its request ends with a 409 that says so.
        using (var deleted = await http.DeleteAsync("v1/queue/job_2"))
            Assert.True((await Json.ReadAsync(deleted, 200)).GetProperty("cancelled").GetBoolean());
        using (var response = await cancelled.WaitAsync(TimeSpan.FromSeconds(10)))
            Assert.Equal("cancelled", Json.Error(await Json.ReadAsync(response, 409)).GetProperty("code").GetString());
        Assert.Equal([("job-3", 1, "img2img")], Waiting(await Json.GetAsync(http, "v1/queue")));

        // An id in use is refused, so a cancel cannot hit the wrong job.
        using (var duplicate = await PostAsync(http, "v1/images/generations", new { prompt = "x", steps = 2 }, "job-3"))
        {
            var error = Json.Error(await Json.ReadAsync(duplicate, 409));
            Assert.Equal((Header, "job_id_in_use"), (error.GetProperty("param").GetString(), error.GetProperty("code").GetString()));
        }

        // The running job stops as /sdapi/v1/interrupt stops it, and the waiting one runs.
        using (var deleted = await http.DeleteAsync("v1/queue/blocker-1"))
            await Json.ReadAsync(deleted, 200);
        using (var response = await blocker.WaitAsync(TimeSpan.FromSeconds(10)))
            Assert.Equal("interrupted", Json.Error(await Json.ReadAsync(response, 409)).GetProperty("code").GetString());
        using (var response = await edit.WaitAsync(TimeSpan.FromSeconds(30)))
            Assert.Single((await Json.ReadAsync(response, 200)).GetProperty("images").EnumerateArray());
        queue = await Json.GetAsync(http, "v1/queue");
        Assert.Empty(queue.GetProperty("running").EnumerateArray());
        Assert.Empty(queue.GetProperty("waiting").EnumerateArray());
    }

    [Fact]
    public async Task Unknown_ids_are_404_and_malformed_headers_400()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        using (var missing = await server.Http.DeleteAsync("v1/queue/no-such-job"))
        {
            var error = Json.Error(await Json.ReadAsync(missing, 404));
            Assert.Equal(("invalid_request_error", "job_not_found"), (error.GetProperty("type").GetString(), error.GetProperty("code").GetString()));
            Assert.Contains("no-such-job", error.GetProperty("message").GetString());
        }
        foreach (var bad in new[] { "has space", new string('a', 65), "semi;colon", "" })
        {
            using var response = await PostAsync(server.Http, "v1/images/generations", new { prompt = "x", steps = 2 }, bad);
            Assert.Equal(Header, Json.Error(await Json.ReadAsync(response, 400)).GetProperty("param").GetString());
        }
        // A valid id is accepted on every generating route; without one the request id is used.
        using (var ok = await PostAsync(server.Http, "sdapi/v1/txt2img", new { prompt = "x", steps = 2 }, new string('a', 64)))
            await Json.ReadAsync(ok, 200);
        using (var ok = await PostAsync(server.Http, "v1/images/generations", new { prompt = "x", steps = 2 }, null))
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    private static List<(string, int, string)> Waiting(JsonElement queue) =>
        queue.GetProperty("waiting").EnumerateArray()
            .Select(w => (w.GetProperty("id").GetString()!, w.GetProperty("position").GetInt32(), w.GetProperty("kind").GetString()!)).ToList();
}
