using System.Text.Json;

namespace LocalDiffusion.Server.Tests;

/// <summary>The AUTOMATIC1111 /sdapi/v1 subset, as A1111 clients call it.</summary>
public sealed class Automatic1111Tests(SharedServer shared) : IClassFixture<SharedServer>
{
    private HttpClient Http => shared.Instance.Http;

    [Fact]
    public async Task Txt2img_round_trip()
    {
        using var response = await Json.PostAsync(Http, "sdapi/v1/txt2img", new
        {
            prompt = "a red circle on a blue background",
            negative_prompt = "green",
            seed = 7,
            steps = 6,
            cfg_scale = 5,
            width = 64,
            height = 64,
            sampler_name = "Euler a",
            batch_size = 2,
            n_iter = 2,
            enable_hr = false,          // unknown fields are ignored, as A1111 does
            send_images = true,
        });
        var json = await Json.ReadAsync(response, 200);
        var images = json.GetProperty("images").EnumerateArray().Select(i => Convert.FromBase64String(i.GetString()!)).ToList();
        Assert.Equal(4, images.Count);
        Assert.All(images, png => Assert.Equal((64, 64), (Images.Decode(png).Width, Images.Decode(png).Height)));
        var info = JsonDocument.Parse(json.GetProperty("info").GetString()!).RootElement;
        Assert.Equal(7, info.GetProperty("seed").GetInt64());
        // Image j of a batch is seed + j, and n_iter batches continue by batch_size each, as A1111 numbers them.
        Assert.Equal([7L, 8L, 9L, 10L], info.GetProperty("all_seeds").EnumerateArray().Select(s => s.GetInt64()));
        Assert.Equal("Euler a", info.GetProperty("sampler_name").GetString());
        Assert.Equal("shapes", info.GetProperty("sd_model_name").GetString());
        var infotext = info.GetProperty("infotexts")[0].GetString()!;
        Assert.Equal(infotext, Images.PngText(images[0], "parameters"));
        Assert.StartsWith("a red circle on a blue background\nNegative prompt: green\nSteps: 6, Sampler: Euler a, CFG scale: 5, Seed: 7, Size: 64x64", infotext);
        Assert.Contains("Seed: 8,", info.GetProperty("infotexts")[1].GetString());
        // So any image can be made again alone from its seed, as in A1111: the second image is seed 8's.
        using var again = await Json.PostAsync(Http, "sdapi/v1/txt2img", new
        {
            prompt = "a red circle on a blue background", negative_prompt = "green", seed = 8, steps = 6, cfg_scale = 5, width = 64, height = 64,
            sampler_name = "Euler a", batch_size = 1,
        });
        var alone = (await Json.ReadAsync(again, 200)).GetProperty("images")[0].GetString()!;
        // The same picture: alone, its UNet rows run at batch 2 instead of 4, and on some CPUs (this AMD EPYC) ONNX Runtime's
        // GEMM then rounds a few values differently, so one channel of one pixel may be off by one level.
        var (batched, single) = (Images.Decode(images[1]).Rgb, Images.Decode(Convert.FromBase64String(alone)).Rgb);
        Assert.Equal(batched.Length, single.Length);
        Assert.InRange(batched.Zip(single, (a, b) => Math.Abs(a - b)).Max(), 0, 2);
        Assert.Equal("Euler a", json.GetProperty("parameters").GetProperty("sampler_name").GetString());

        // seed -1 picks one and reports it.
        using var random = await Json.PostAsync(Http, "sdapi/v1/txt2img", new { prompt = "x", seed = -1, steps = 2 });
        var picked = JsonDocument.Parse((await Json.ReadAsync(random, 200)).GetProperty("info").GetString()!).RootElement.GetProperty("seed").GetInt64();
        Assert.InRange(picked, 0, uint.MaxValue);
    }

    [Fact]
    public async Task Lists_samplers_models_and_options()
    {
        var samplers = await Json.GetAsync(Http, "sdapi/v1/samplers");
        var names = samplers.EnumerateArray().Select(s => s.GetProperty("name").GetString()).ToList();
        Assert.Contains("Euler a", names);
        Assert.Contains("DPM++ 2M Karras", names);
        var models = await Json.GetAsync(Http, "sdapi/v1/sd-models");
        Assert.Equal(["shapes", "tiny"], models.EnumerateArray().Select(m => m.GetProperty("title").GetString()));
        var options = await Json.GetAsync(Http, "sdapi/v1/options");
        Assert.Equal("shapes", options.GetProperty("sd_model_checkpoint").GetString());
    }

    [Fact]
    public async Task Checkpoint_is_chosen_with_options_or_override_settings()
    {
        try
        {
            await Json.ReadAsync(await Json.PostAsync(Http, "sdapi/v1/options", new { sd_model_checkpoint = "tiny [0123abcd]" }), 200);
            Assert.Equal("tiny", (await Json.GetAsync(Http, "sdapi/v1/options")).GetProperty("sd_model_checkpoint").GetString());
            async Task<string> ModelOf(object body)
            {
                using var response = await Json.PostAsync(Http, "sdapi/v1/txt2img", body);
                var json = await Json.ReadAsync(response, 200);
                return JsonDocument.Parse(json.GetProperty("info").GetString()!).RootElement.GetProperty("sd_model_name").GetString()!;
            }
            Assert.Equal("tiny", await ModelOf(new { prompt = "x", steps = 2, width = 64, height = 64 }));
            Assert.Equal("shapes", await ModelOf(new { prompt = "x", steps = 2, override_settings = new { sd_model_checkpoint = "shapes" } }));
            using var unknown = await Json.PostAsync(Http, "sdapi/v1/options", new { sd_model_checkpoint = "sdxl" });
            Assert.Equal(404, (int)unknown.StatusCode);
        }
        finally
        {
            await Json.PostAsync(Http, "sdapi/v1/options", new { sd_model_checkpoint = "shapes" });
        }
    }

    [Fact]
    public async Task Progress_rises_during_a_generation_and_interrupt_returns_the_picture_so_far()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        var idle = await Json.GetAsync(server.Http, "sdapi/v1/progress");
        Assert.Equal(0, idle.GetProperty("progress").GetDouble());

        var generation = Json.PostAsync(server.Http, "sdapi/v1/txt2img", new { prompt = "a blue star", steps = 1000, seed = 3, sampler_name = "Euler" });
        var seen = new List<double>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        JsonElement last = default;
        // Poll until the fraction has risen twice and a preview (decoded at a quarter of the steps) is available.
        while (DateTime.UtcNow < deadline)
        {
            last = await Json.GetAsync(server.Http, "sdapi/v1/progress");
            var p = last.GetProperty("progress").GetDouble();
            if (p > 0 && (seen.Count == 0 || p > seen[^1])) seen.Add(p);
            if (seen.Count >= 3 && last.GetProperty("current_image").ValueKind == JsonValueKind.String) break;
            await Task.Delay(50);
        }
        TestContext.Current.TestOutputHelper?.WriteLine("progress seen: " + string.Join(", ", seen.Select(p => p.ToString("F3"))));
        Assert.True(seen.Count >= 3, $"progress did not rise: {string.Join(", ", seen)}; last {last}");
        Assert.True(seen[^1] < 1);
        Assert.True(last.GetProperty("eta_relative").GetDouble() > 0);
        Assert.Equal(1000, last.GetProperty("state").GetProperty("sampling_steps").GetInt32());
        Assert.StartsWith("txt2img ", last.GetProperty("state").GetProperty("job").GetString());
        var preview = Convert.FromBase64String(last.GetProperty("current_image").GetString()!);
        Assert.Equal((64, 64), (Images.Decode(preview).Width, Images.Decode(preview).Height));

        var interruptedAt = DateTime.UtcNow;
        await Json.ReadAsync(await server.Http.PostAsync("sdapi/v1/interrupt", null), 200);
        using var response = await generation.WaitAsync(TimeSpan.FromSeconds(10));
        TestContext.Current.TestOutputHelper?.WriteLine($"answered {(DateTime.UtcNow - interruptedAt).TotalMilliseconds:F0} ms after the interrupt");
        var json = await Json.ReadAsync(response, 200);
        // As A1111 does: denoising stops and the picture so far is decoded and returned (a partly denoised one, not nothing).
        var partial = Images.Decode(Convert.FromBase64String(Assert.Single(json.GetProperty("images").EnumerateArray()).GetString()!));
        Assert.Equal((64, 64), (partial.Width, partial.Height));
        Assert.True(partial.Rgb.Max() - partial.Rgb.Min() > 32, "the interrupted picture is flat: nothing was decoded");
        Assert.True(JsonDocument.Parse(json.GetProperty("info").GetString()!).RootElement.GetProperty("interrupted").GetBoolean());
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("running").GetInt32() == 0, "the slot to be free");
    }
}
