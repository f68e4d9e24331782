using LocalDiffusion.Pipeline;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// <c>serve --vae-tiling</c> (<see cref="ServerOptions.VaeTiling"/>) reaches every model's decoder: a served picture decoded
/// in 32-pixel tiles is the one the library decodes with the same tiling, and not the untiled one (tile seams are blended,
/// so the pixels move). Model: the tiny test model at 64×64.
/// </summary>
public sealed class ServerVaeTilingTests
{
    private static readonly VaeTilingOptions SmallTiles = new() { Mode = VaeTiling.On, TileLatentSize = 4 };

    private static async Task<byte[]> ServedAsync(VaeTilingOptions tiling)
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], VaeTiling = tiling });
        var json = await Json.ReadAsync(await Json.PostAsync(server.Http, "v1/images/generations",
            new { model = "tiny", prompt = "a red circle", size = "64x64", seed = 5, steps = 3, scheduler = "euler", guidance_scale = 7.5, response_format = "b64_json" }), 200);
        return Images.Decode(Convert.FromBase64String(json.GetProperty("data")[0].GetProperty("b64_json").GetString()!)).Rgb;
    }

    [Fact]
    public async Task The_served_decoder_tiles_as_asked()
    {
        var tiled = await ServedAsync(SmallTiles);
        using var pipeline = StableDiffusionPipeline.Load(Repo.Tiny, new PipelineOptions { Device = "cpu", VaeTiling = SmallTiles });
        var expected = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a red circle", Width = 64, Height = 64, Seed = 5, Steps = 3, Scheduler = "euler", GuidanceScale = 7.5f },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(expected.Images[0].Rgb, tiled);
        Assert.NotEqual(await ServedAsync(new VaeTilingOptions()), tiled);
    }
}
