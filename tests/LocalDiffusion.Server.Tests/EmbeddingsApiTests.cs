namespace LocalDiffusion.Server.Tests;

/// <summary>
/// Textual inversion over both APIs: <c>--embeddings-dir</c> (models/test/ti/embeddings, by tools/build_ti_test_files.py) on
/// tiny with the table text encoder of models/test/ti/sd15 (a folder assembled here), listed by /sdapi/v1/embeddings in
/// A1111's shape and used by prompts of txt2img and of the OpenAI generations route, through a real HTTP client.
/// </summary>
public sealed class EmbeddingsApiTests
{
    internal static string Sd15TiModel()
    {
        var target = Path.Combine(Path.GetTempPath(), $"ld-server-ti-{Guid.NewGuid():N}");
        foreach (var file in Directory.EnumerateFiles(Repo.Tiny, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(target, Path.GetRelativePath(Repo.Tiny, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
        File.Copy(Repo.Model("test", "ti", "sd15", "text_encoder.onnx"), Path.Combine(target, "text_encoder", "model.onnx"), true);
        return target;
    }

    [Fact]
    public async Task Embeddings_are_listed_in_A1111s_shape_and_used_by_both_apis()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Sd15TiModel()], EmbeddingsDirectory = Repo.Model("test", "ti", "embeddings") });
        var listing = await Json.GetAsync(server.Http, "sdapi/v1/embeddings");
        var loaded = listing.GetProperty("loaded");
        Assert.Equal(["a1111-style", "cat-toy", "kohya-style", "old-paramdict", "toy-bin"], loaded.EnumerateObject().Select(p => p.Name));
        var a1111 = loaded.GetProperty("a1111-style");
        Assert.Equal(1500, a1111.GetProperty("step").GetInt32());
        Assert.Equal("e1441589", a1111.GetProperty("sd_checkpoint").GetString());
        Assert.Equal("tiny-ti", a1111.GetProperty("sd_checkpoint_name").GetString());
        Assert.Equal(32, a1111.GetProperty("shape").GetInt32());
        Assert.Equal(2, a1111.GetProperty("vectors").GetInt32());
        var skipped = listing.GetProperty("skipped");
        Assert.Equal(["wide", "xl-pair"], skipped.EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(48, skipped.GetProperty("wide").GetProperty("shape").GetInt32());
        Assert.Contains("48 wide", skipped.GetProperty("wide").GetProperty("reason").GetString());

        async Task<string> Txt2Img(string prompt, string negative) =>
            (await Json.ReadAsync(await Json.PostAsync(server.Http, "sdapi/v1/txt2img", new { prompt, negative_prompt = negative, seed = 3, steps = 3, width = 64, height = 64 }), 200))
                .GetProperty("images")[0].GetString()!;
        var plain = await Txt2Img("a red circle", "blue");
        Assert.NotEqual(plain, await Txt2Img("a red circle a1111-style", "blue"));
        Assert.NotEqual(plain, await Txt2Img("a red circle", "blue kohya-style"));
        Assert.Equal(plain, await Txt2Img("a red circle", "blue"));
        var refused = await Json.PostAsync(server.Http, "sdapi/v1/txt2img", new { prompt = "a wide circle", seed = 3, steps = 3, width = 64, height = 64 });
        Assert.Contains("wide.safetensors", await refused.Content.ReadAsStringAsync());
        Assert.Equal(400, (int)refused.StatusCode);

        async Task<string> OpenAi(string prompt) =>
            (await Json.ReadAsync(await Json.PostAsync(server.Http, "v1/images/generations", new { prompt, seed = 3, steps = 3, size = "64x64", response_format = "b64_json" }), 200))
                .GetProperty("data")[0].GetProperty("b64_json").GetString()!;
        Assert.NotEqual(await OpenAi("a red circle"), await OpenAi("a red circle cat-toy"));
    }
}
