namespace LocalDiffusion.Server.Tests;

/// <summary>
/// Textual inversion on the flow families over the A1111 API: <c>--embeddings-dir</c> (models/test/ti/embeddings, by
/// tools/build_ti_test_files.py) on tiny-sd3 / tiny-flux-dev with table CLIP encoders (models/test/ti/sd3, ti/sdxl; folders
/// assembled here). /sdapi/v1/embeddings lists what the loaded model's CLIP encoders can take: SD 3 every file (32 wide:
/// CLIP-L, 48: CLIP-G, the SDXL pair: both), FLUX all but the 48-wide one (its only CLIP is 32 wide); a trigger word in a
/// txt2img prompt draws another picture.
/// </summary>
public sealed class FlowEmbeddingsApiTests
{
    private static string Assemble(string variant, params (string Component, string File)[] encoders)
    {
        var source = Repo.Model("test", variant);
        var target = Path.Combine(Path.GetTempPath(), $"ld-server-flow-ti-{Guid.NewGuid():N}");
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
        foreach (var (component, file) in encoders) File.Copy(Repo.Model("test", "ti", file), Path.Combine(target, component, "model.onnx"), true);
        return target;
    }

    [Fact]
    public async Task Sd3_lists_every_file_its_clip_encoders_take()
    {
        var model = Assemble("tiny-sd3", ("text_encoder", "sd3/text_encoder.onnx"), ("text_encoder_2", "sd3/text_encoder_2.onnx"));
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [model], EmbeddingsDirectory = Repo.Model("test", "ti", "embeddings") });
        var listing = await Json.GetAsync(server.Http, "sdapi/v1/embeddings");
        Assert.Equal(["a1111-style", "cat-toy", "kohya-style", "old-paramdict", "toy-bin", "wide", "xl-pair"], listing.GetProperty("loaded").EnumerateObject().Select(p => p.Name));
        Assert.Equal(80, listing.GetProperty("loaded").GetProperty("xl-pair").GetProperty("shape").GetInt32());
        Assert.Empty(listing.GetProperty("skipped").EnumerateObject());
    }

    [Fact]
    public async Task Flux_lists_what_clip_l_takes_and_a_prompt_uses_it()
    {
        var model = Assemble("tiny-flux-dev", ("text_encoder", "sdxl/text_encoder.onnx"));
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [model], EmbeddingsDirectory = Repo.Model("test", "ti", "embeddings") });
        var listing = await Json.GetAsync(server.Http, "sdapi/v1/embeddings");
        Assert.Equal(["a1111-style", "cat-toy", "kohya-style", "old-paramdict", "toy-bin", "xl-pair"], listing.GetProperty("loaded").EnumerateObject().Select(p => p.Name));
        var wide = Assert.Single(listing.GetProperty("skipped").EnumerateObject());
        Assert.Equal("wide", wide.Name);
        Assert.Contains("48 wide", wide.Value.GetProperty("reason").GetString());

        async Task<string> Txt2Img(string prompt) =>
            (await Json.ReadAsync(await Json.PostAsync(server.Http, "sdapi/v1/txt2img", new { prompt, seed = 3, steps = 2, width = 64, height = 48 }), 200))
                .GetProperty("images")[0].GetString()!;
        var plain = await Txt2Img("a red circle");
        Assert.NotEqual(plain, await Txt2Img("a red circle cat-toy"));
        Assert.Equal(plain, await Txt2Img("a red circle"));
        var refused = await Json.PostAsync(server.Http, "sdapi/v1/txt2img", new { prompt = "a wide circle", seed = 3, steps = 2, width = 64, height = 48 });
        Assert.Equal(400, (int)refused.StatusCode);
        Assert.Contains("wide.safetensors", await refused.Content.ReadAsStringAsync());
    }
}
