using LocalDiffusion.Pipeline;
using System.ClientModel;
using OpenAI.Images;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// What a client leaves unset is the model's, on every API: a Turbo model runs its one unguided step and an LCM model its
/// 4 steps at guidance 8.5 (an OpenAI client sends neither; A1111 clients may leave them out too), not 20 guided steps.
/// </summary>
public sealed class FamilyDefaultsTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ld-families-").FullName;
    private TestServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        // tiny's weights dressed as an SD-Turbo export: diffusers keeps StableDiffusionPipeline, the folder name says turbo.
        var turbo = Path.Combine(_folder, "sd-turbo-tiny");
        CopyDirectory(Repo.Tiny, turbo);
        _server = await TestServer.StartAsync(new ServerOptions { Models = [turbo, Repo.Model("test", "tiny-lcm"), Repo.Tiny] });
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Openai_sdk_requests_run_the_family_defaults()
    {
        foreach (var (model, steps, guidance) in new[] { ("sd-turbo-tiny", 1, 0f), ("tiny-lcm", 4, 8.5f), ("tiny", 20, 7.5f) })
        {
            var client = OpenAiSdkTests.Client(_server.Address, model);
            ClientResult<GeneratedImage> result = await client.GenerateImageAsync("a red circle", new ImageGenerationOptions { ResponseFormat = GeneratedImageFormat.Bytes });
            var raw = System.Text.Json.JsonDocument.Parse(result.GetRawResponse().Content.ToString()).RootElement;
            Assert.Equal(steps, raw.GetProperty("steps").GetInt32());
            var parameters = Images.PngText(result.Value.ImageBytes.ToArray(), "parameters")!;
            Assert.Contains($"Steps: {steps},", parameters);
            Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"CFG scale: {guidance}"), parameters);
        }
    }

    [Fact]
    public async Task A1111_requests_without_steps_or_cfg_run_the_family_defaults()
    {
        foreach (var (model, steps, guidance) in new[] { ("sd-turbo-tiny", 1, 0.0), ("tiny-lcm", 4, 8.5) })
        {
            var json = await Json.ReadAsync(await Json.PostAsync(_server.Http, "sdapi/v1/txt2img",
                new { prompt = "a red circle", override_settings = new { sd_model_checkpoint = model } }), 200);
            var info = System.Text.Json.JsonDocument.Parse(json.GetProperty("info").GetString()!).RootElement;
            Assert.Equal(steps, info.GetProperty("steps").GetInt32());
            Assert.Equal(guidance, info.GetProperty("cfg_scale").GetDouble());
        }
        // What a client sets still wins.
        var set = await Json.ReadAsync(await Json.PostAsync(_server.Http, "sdapi/v1/txt2img",
            new { prompt = "x", steps = 3, cfg_scale = 2, override_settings = new { sd_model_checkpoint = "sd-turbo-tiny" } }), 200);
        Assert.Equal(3, System.Text.Json.JsonDocument.Parse(set.GetProperty("info").GetString()!).RootElement.GetProperty("steps").GetInt32());
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }
}
