namespace LocalDiffusion.Server.Tests;

/// <summary>
/// The calls A1111 clients make when they connect (SillyTavern, Open WebUI, the Photoshop and Krita plugins fill their
/// menus from these): each answers in A1111's shape with what this server has, and sampling steps are counted as A1111
/// counts them.
/// </summary>
public sealed class A1111ClientStartupTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private HttpClient Http => shared.Instance.Http;

    [Fact]
    public async Task Listing_routes_answer_with_what_exists()
    {
        foreach (var path in new[] { "loras", "hypernetworks", "face-restorers", "realesrgan-models", "prompt-styles", "extensions", "sd-vae", "sd-modules" })
            Assert.Empty((await Json.GetAsync(Http, $"sdapi/v1/{path}")).EnumerateArray());
        var embeddings = await Json.GetAsync(Http, "sdapi/v1/embeddings");
        Assert.Empty(embeddings.GetProperty("loaded").EnumerateObject());
        Assert.Empty(embeddings.GetProperty("skipped").EnumerateObject());
        // A1111's built-ins, which the hires fix uses.
        Assert.Equal(["None", "Lanczos", "Nearest"], (await Json.GetAsync(Http, "sdapi/v1/upscalers")).EnumerateArray().Select(u => u.GetProperty("name").GetString()));
        Assert.Equal(["Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)"],
            (await Json.GetAsync(Http, "sdapi/v1/latent-upscale-modes")).EnumerateArray().Select(u => u.GetProperty("name").GetString()));
        var scripts = await Json.GetAsync(Http, "sdapi/v1/scripts");
        Assert.Empty(scripts.GetProperty("txt2img").EnumerateArray());
        Assert.Equal("Automatic", (await Json.GetAsync(Http, "sdapi/v1/options")).GetProperty("sd_vae").GetString());
        foreach (var refresh in new[] { "refresh-checkpoints", "refresh-vae", "refresh-loras", "refresh-embeddings", "unload-checkpoint", "reload-checkpoint" })
            Assert.Equal("null", await (await Http.PostAsync($"sdapi/v1/{refresh}", null)).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Cmd_flags_and_memory_describe_this_process()
    {
        var flags = await Json.GetAsync(Http, "sdapi/v1/cmd-flags");
        Assert.True(flags.GetProperty("api").GetBoolean());
        Assert.False(flags.GetProperty("listen").GetBoolean()); // bound to 127.0.0.1
        Assert.Equal(shared.Instance.Address.Port, flags.GetProperty("port").GetInt32());
        var ram = (await Json.GetAsync(Http, "sdapi/v1/memory")).GetProperty("ram");
        var (used, total, free) = (ram.GetProperty("used").GetInt64(), ram.GetProperty("total").GetInt64(), ram.GetProperty("free").GetInt64());
        Assert.InRange(used, 50L << 20, total); // this process holds the models: tens of MB at least
        Assert.Equal(total - used, free);
    }

    [Fact]
    public async Task The_vae_override_is_listed()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], VaeDecoderPath = Repo.Model("shapes", "vae_decoder") });
        var vae = Assert.Single((await Json.GetAsync(server.Http, "sdapi/v1/sd-vae")).EnumerateArray());
        Assert.Equal("shapes/vae_decoder", vae.GetProperty("model_name").GetString());
        Assert.Equal("shapes/vae_decoder", (await Json.GetAsync(server.Http, "sdapi/v1/options")).GetProperty("sd_vae").GetString());
    }

    [Fact]
    public async Task The_lora_folder_is_listed_in_A1111s_shape()
    {
        var folder = Repo.Model("test", "lora");
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], LoraDirectory = folder });
        var loras = (await Json.GetAsync(server.Http, "sdapi/v1/loras")).EnumerateArray().ToList();
        var kohya = Assert.Single(loras, l => l.GetProperty("name").GetString() == "kohya_fp16");
        Assert.Equal("kohya_fp16", kohya.GetProperty("alias").GetString());
        Assert.EndsWith("kohya_fp16.safetensors", kohya.GetProperty("path").GetString());
        Assert.Equal("networks.lora", kohya.GetProperty("metadata").GetProperty("ss_network_module").GetString());
    }

    [Fact]
    public async Task Heun_steps_are_counted_as_sampler_steps_not_evaluations()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        // Heun evaluates the UNet 2n − 1 times for n steps; A1111 reports n.
        var generation = Json.PostAsync(server.Http, "sdapi/v1/txt2img", new { prompt = "x", steps = 400, sampler_name = "Heun", seed = 1 });
        var steps = new List<(int Step, int Of)>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && steps.Count < 3)
        {
            var state = (await Json.GetAsync(server.Http, "sdapi/v1/progress?skip_current_image=true")).GetProperty("state");
            var step = state.GetProperty("sampling_step").GetInt32();
            if (step > 0 && (steps.Count == 0 || step > steps[^1].Step)) steps.Add((step, state.GetProperty("sampling_steps").GetInt32()));
            await Task.Delay(30);
        }
        await server.Http.PostAsync("sdapi/v1/interrupt", null);
        using var response = await generation;
        Assert.True(steps.Count >= 3, $"progress did not move: {string.Join(", ", steps)}");
        Assert.All(steps, s => Assert.Equal(400, s.Of));
        Assert.All(steps, s => Assert.InRange(s.Step, 1, 400));
    }

    [Fact]
    public async Task The_separate_scheduler_field_joins_the_sampler_as_newer_clients_send_it()
    {
        async Task<string> SamplerOf(object body) =>
            System.Text.Json.JsonDocument.Parse((await Json.ReadAsync(await Json.PostAsync(Http, "sdapi/v1/txt2img", body), 200)).GetProperty("info").GetString()!)
                .RootElement.GetProperty("sampler_name").GetString()!;
        Assert.Equal("DPM++ 2M Karras", await SamplerOf(new { prompt = "x", steps = 3, sampler_name = "DPM++ 2M", scheduler = "Karras" }));
        Assert.Equal("DPM++ 2M", await SamplerOf(new { prompt = "x", steps = 3, sampler_name = "DPM++ 2M", scheduler = "Automatic" }));
        Assert.Equal("Euler Exponential", await SamplerOf(new { prompt = "x", steps = 3, sampler_name = "Euler", scheduler = "exponential" }));
        var raw = await Json.ReadAsync(await Json.PostAsync(Http, "sdapi/v1/txt2img", new { prompt = "x", sampler_name = "Euler", scheduler = "Align Your Steps" }), 400);
        // A1111's error body (its API middleware: error, detail, body, errors), with the field and code added.
        Assert.Equal("HTTPException", raw.GetProperty("error").GetString());
        Assert.StartsWith("400: ", raw.GetProperty("errors").GetString());
        Assert.Equal("scheduler", raw.GetProperty("field").GetString());
        var unknown = Json.Error(raw);
        Assert.Equal("scheduler", unknown.GetProperty("param").GetString());
        var missing = Json.Error(await Json.ReadAsync(await Json.PostAsync(Http, "sdapi/v1/txt2img", new { prompt = "x", sampler_name = "DDIM", scheduler = "Karras" }), 400));
        Assert.Contains("has no Karras schedule", missing.GetProperty("message").GetString());
        var names = (await Json.GetAsync(Http, "sdapi/v1/schedulers")).EnumerateArray().Select(e => e.GetProperty("label").GetString()).ToList();
        Assert.Equal(["Automatic", "Uniform", "Karras", "Exponential", "Beta"], names);
    }

    [Fact]
    public async Task The_api_key_is_accepted_as_a_basic_auth_password_as_a1111_clients_send_it()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], ApiKey = "sesame" });
        async Task<int> StatusAsync(string scheme, string value)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "sdapi/v1/options");
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue(scheme, value);
            return (int)(await server.Http.SendAsync(request)).StatusCode;
        }
        string Basic(string text) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(text));
        Assert.Equal(200, await StatusAsync("Basic", Basic("user:sesame")));
        Assert.Equal(200, await StatusAsync("Basic", Basic(":sesame")));
        Assert.Equal(200, await StatusAsync("Bearer", "sesame"));
        Assert.Equal(401, await StatusAsync("Basic", Basic("sesame:wrong")));
        Assert.Equal(401, await StatusAsync("Basic", Basic("sesame")));
        Assert.Equal(401, await StatusAsync("Basic", "not base64!"));
    }
}
