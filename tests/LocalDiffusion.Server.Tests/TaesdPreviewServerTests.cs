using System.Text.Json;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// Live previews from TAESD in the server: models/shapes ships taesd/ (tools/shapes/train_taesd.py), so
/// /sdapi/v1/progress's current_image and the OpenAI API's partial images come from it, and /sdapi/v1/options says so as
/// AUTOMATIC1111 does (show_progress_type "TAESD"); ServerOptions.FullVaePreviews (serve --preview-vae full) goes back to
/// the full VAE.
/// </summary>
public sealed class TaesdPreviewServerTests
{
    [Fact]
    public async Task Options_name_the_preview_method_of_the_served_model()
    {
        await using (var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes, Repo.Tiny] }))
        {
            Assert.Equal("TAESD", (await Json.GetAsync(server.Http, "sdapi/v1/options")).GetProperty("show_progress_type").GetString());
            await Json.ReadAsync(await Json.PostAsync(server.Http, "sdapi/v1/options", new { sd_model_checkpoint = "tiny" }), 200);
            Assert.Equal("Full", (await Json.GetAsync(server.Http, "sdapi/v1/options")).GetProperty("show_progress_type").GetString()); // tiny ships none
        }
        await using (var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], FullVaePreviews = true }))
            Assert.Equal("Full", (await Json.GetAsync(server.Http, "sdapi/v1/options")).GetProperty("show_progress_type").GetString());
    }

    [Fact]
    public async Task A_TAESD_given_for_previews_serves_progress_current_image()
    {
        // The tiny model ships no TAESD; serve --preview-vae gives it madebyollin's raw form (models/test/taesd/raw).
        var taesd = Repo.Model("test", "taesd", "raw", "taesd_decoder.onnx");
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], PreviewDecoderPath = taesd });
        Assert.Equal("TAESD", (await Json.GetAsync(server.Http, "sdapi/v1/options")).GetProperty("show_progress_type").GetString());
        await Json.GetAsync(server.Http, "sdapi/v1/progress"); // a client polls: previews are made
        // The most steps a request may ask: previews at a quarter, half and three quarters stay up for seconds even on a
        // fast machine, and on a loaded one a poll still lands between them.
        var generation = Json.PostAsync(server.Http, "sdapi/v1/txt2img", new { prompt = "a blue star", steps = 1000, seed = 3, sampler_name = "Euler", width = 64, height = 64 });
        JsonElement last = default;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !generation.IsCompleted)
        {
            last = await Json.GetAsync(server.Http, "sdapi/v1/progress");
            if (last.GetProperty("current_image").ValueKind == JsonValueKind.String) break;
            await Task.Delay(50);
        }
        Assert.Equal(JsonValueKind.String, last.GetProperty("current_image").ValueKind);
        var preview = Images.Decode(Convert.FromBase64String(last.GetProperty("current_image").GetString()!));
        Assert.Equal((64, 64), (preview.Width, preview.Height));
        await Json.ReadAsync(await server.Http.PostAsync("sdapi/v1/interrupt", null), 200);
        using var response = await generation.WaitAsync(TimeSpan.FromSeconds(30));
        await Json.ReadAsync(response, 200);
    }

    [Fact]
    public async Task A_TAESD_for_other_latents_fails_the_model_naming_the_file()
    {
        // A 16-channel TAESD (TAEF1's width) for an SD 1.x model: the model fails to load, and requests for it are told why.
        var taef1 = Repo.Model("test", "taesd", "taef1");
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], PreviewDecoderPath = taef1 });
        Assert.Equal("failed", (await server.HealthAsync()).GetProperty("models")[0].GetProperty("state").GetString());
        using var response = await Json.PostAsync(server.Http, "sdapi/v1/txt2img", new { prompt = "x", steps = 2 });
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.Equal(500, (int)response.StatusCode);
        Assert.Contains(Path.Combine(taef1, "vae_decoder", "model.onnx"), body);
        Assert.Contains("16 latent channels", body);
    }
}
