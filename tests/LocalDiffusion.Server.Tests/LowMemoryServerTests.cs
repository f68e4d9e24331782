namespace LocalDiffusion.Server.Tests;

/// <summary><c>serve --low-memory</c> (<see cref="ServerOptions.LowMemory"/>): models are reopened per generation, pictures unchanged.</summary>
public sealed class LowMemoryServerTests
{
    private static async Task<byte[]> Txt2ImgPixels(HttpClient http)
    {
        using var response = await Json.PostAsync(http, "sdapi/v1/txt2img", new { prompt = "a red circle", seed = 11, steps = 5, sampler_name = "DPM++ 2M", width = 64, height = 64 });
        var json = await Json.ReadAsync(response, 200);
        return Images.Decode(Convert.FromBase64String(json.GetProperty("images")[0].GetString()!)).Rgb;
    }

    [Fact]
    public async Task A_low_memory_server_draws_the_same_pictures_generation_after_generation()
    {
        byte[] reference;
        await using (var kept = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] }))
            reference = await Txt2ImgPixels(kept.Http);
        await using var lean = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], LowMemory = true });
        // The first generation uses the sessions loading opened; the second reopens every model.
        Assert.Equal(reference, await Txt2ImgPixels(lean.Http));
        Assert.Equal(reference, await Txt2ImgPixels(lean.Http));
    }
}
