using LocalDiffusion.Pipeline;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// Black Forest Labs' FLUX.1 ONNX layout served from a models directory (no model_index.json): found by the directory
/// scan beside a diffusers-layout folder, listed with its family and defaults, and drawing what the library draws with the
/// diffusers-layout export of the same weights at the same T5 length (models/test/bfl-tiny-flux-schnell, written from
/// tiny-flux-schnell by tools/build_flux_bfl_test_model.py; bytes within 1, as FluxBflReleaseTests measures in the library).
/// </summary>
public sealed class FluxBflServerTests : IAsyncLifetime
{
    private readonly string _models = Path.Combine(Path.GetTempPath(), "ld-bfl-models-" + Guid.NewGuid().ToString("N"));
    private TestServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        foreach (var name in new[] { "bfl-tiny-flux-schnell", "tiny-flux-schnell" })
        {
            var source = Repo.Model("test", name);
            foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(_models, name, Path.GetRelativePath(source, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
        }
        _server = await TestServer.StartAsync(new ServerOptions { ModelsDirectory = _models });
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        try { Directory.Delete(_models, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [Fact]
    public async Task The_bfl_layout_is_listed_and_draws_what_the_diffusers_layout_draws()
    {
        var models = (await Json.GetAsync(_server.Http, "v1/models")).GetProperty("data").EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!);
        Assert.Equal(["bfl-tiny-flux-schnell", "tiny-flux-schnell"], models.Keys.Order(StringComparer.Ordinal));
        var bfl = models["bfl-tiny-flux-schnell"];
        Assert.Equal("FLUX.1-schnell", bfl.GetProperty("family").GetString());
        Assert.Equal(4, bfl.GetProperty("defaults").GetProperty("steps").GetInt32());

        var json = await Json.ReadAsync(await Json.PostAsync(_server.Http, "v1/images/generations",
            new { model = "bfl-tiny-flux-schnell", prompt = "a red cat", size = "64x48", seed = 5, response_format = "b64_json" }), 200);
        var fromBfl = Images.Decode(Convert.FromBase64String(json.GetProperty("data")[0].GetProperty("b64_json").GetString()!)).Rgb;
        // The BFL export's T5 length is static (24 in the tiny one) and is its default; the diffusers export is told it.
        using var diffusers = StableDiffusionPipeline.Load(Repo.Model("test", "tiny-flux-schnell"), new PipelineOptions { Device = "cpu" });
        var fromDiffusers = (await diffusers.GenerateAsync(new GenerationRequest { Prompt = "a red cat", Width = 64, Height = 48, Seed = 5, MaxSequenceLength = 24 },
            cancellationToken: TestContext.Current.CancellationToken)).Images[0].Rgb;
        Assert.Equal(fromDiffusers.Length, fromBfl.Length);
        Assert.True(fromDiffusers.Zip(fromBfl, (a, b) => Math.Abs(a - b)).Max() <= 1);
    }
}
