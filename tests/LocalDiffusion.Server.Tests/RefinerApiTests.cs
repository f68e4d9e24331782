using LocalDiffusion.Pipeline;
using System.Text.Json;

namespace LocalDiffusion.Server.Tests;

/// <summary>A1111's <c>refiner_checkpoint</c> / <c>refiner_switch_at</c>: the SDXL base → refiner hand-off over HTTP.</summary>
public sealed class RefinerApiTests
{
    private static readonly string Base = Repo.Model("test", "tiny-sdxl"), Refiner = Repo.Model("test", "tiny-sdxl-refiner");

    [Fact]
    public async Task Txt2img_with_a_refiner_equals_the_library_hand_off()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Base, Refiner] });
        using var response = await Json.PostAsync(server.Http, "sdapi/v1/txt2img", new
        {
            prompt = "a red circle on a blue background", seed = 42, steps = 10, cfg_scale = 5, width = 96, height = 64,
            sampler_name = "Euler", refiner_checkpoint = "tiny-sdxl-refiner", refiner_switch_at = 0.8,
        });
        var json = await Json.ReadAsync(response, 200);
        var png = Convert.FromBase64String(json.GetProperty("images")[0].GetString()!);
        Assert.Contains("Refiner switch at: 0.8", Images.PngText(png, "parameters"));

        using var basePipeline = StableDiffusionPipeline.Load(Base, new PipelineOptions { Device = "cpu" });
        using var refiner = StableDiffusionPipeline.Load(Refiner, new PipelineOptions { Device = "cpu" });
        var expected = await basePipeline.GenerateWithRefinerAsync(new GenerationRequest
        {
            Prompt = "a red circle on a blue background", Seed = 42, Steps = 10, GuidanceScale = 5, Width = 96, Height = 64, Scheduler = "Euler",
        }, refiner, 0.8f, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(expected.Images[0].Rgb, Images.Decode(png).Rgb);
    }

    [Theory]
    [InlineData("tiny-sdxl-refiner", 1.5, "refiner_switch_at")]
    [InlineData("no-such-model", 0.8, null)]
    [InlineData("tiny-sdxl", 0.8, "refiner_checkpoint")] // the base itself: not another model
    public async Task Bad_refiner_fields_are_named(string checkpoint, double switchAt, string? param)
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Base, Refiner] });
        using var response = await Json.PostAsync(server.Http, "sdapi/v1/txt2img", new
        {
            prompt = "x", steps = 4, width = 96, height = 64, refiner_checkpoint = checkpoint, refiner_switch_at = switchAt,
        });
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        if (param is null)
        {
            Assert.Equal(404, (int)response.StatusCode);
            Assert.Contains("no-such-model", body);
            return;
        }
        Assert.Equal(400, (int)response.StatusCode);
        Assert.Contains(param, body);
    }
}
