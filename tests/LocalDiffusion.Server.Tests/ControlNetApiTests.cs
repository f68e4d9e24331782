using LocalDiffusion.Pipeline;
using System.Text.Json;
using LocalDiffusion.ControlNet;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// The sd-webui-controlnet extension's API on a real server over loopback HTTP: <c>/controlnet/model_list</c> and
/// <c>module_list</c> from <c>--controlnet-dir</c>, units in <c>alwayson_scripts.controlnet.args</c> of txt2img and img2img
/// (the picture must be the one the library draws for the same units), and its refusals. Model: models/test/tiny-controlnet
/// (tools/build_controlnet_test_model.py); its two ControlNets are copied into a ControlNet folder under other names.
/// </summary>
public sealed class ControlNetApiTests : IAsyncLifetime
{
    private static readonly string Model = Repo.Model("test", "tiny-controlnet");
    private readonly string _controlNets = Path.Combine(Path.GetTempPath(), $"ld-controlnets-{Guid.NewGuid():N}");
    private TestServer? _server;

    private HttpClient Http => _server!.Http;

    public async ValueTask InitializeAsync()
    {
        foreach (var (from, to) in new[] { ("controlnet", "tiny-canny"), ("controlnet_1", "tiny-second") })
        {
            Directory.CreateDirectory(Path.Combine(_controlNets, to));
            File.Copy(Path.Combine(Model, from, "model.onnx"), Path.Combine(_controlNets, to, "model.onnx"));
        }
        _server = await TestServer.StartAsync(new ServerOptions { Models = [Model], ControlNetDirectory = _controlNets });
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        Directory.Delete(_controlNets, recursive: true);
    }

    /// <summary>A control picture: 16-px checkerboard (the parity tests' picture B).</summary>
    private static byte[] Checkerboard(int width, int height) =>
        Images.Png(width, height, (x, y) => (x / 16 + y / 16) % 2 == 0 ? ((byte)255, (byte)255, (byte)255, (byte)255) : ((byte)0, (byte)0, (byte)0, (byte)255));

    private static object Txt2Img(params object[] units) => new
    {
        prompt = "a red circle",
        seed = 3,
        steps = 4,
        cfg_scale = 7.5,
        width = 96,
        height = 64,
        sampler_name = "Euler",
        alwayson_scripts = new { controlnet = new { args = units } },
    };

    private async Task<byte[]> FirstImageAsync(string path, object body)
    {
        using var response = await Json.PostAsync(Http, path, body);
        var json = await Json.ReadAsync(response, 200);
        return Convert.FromBase64String(json.GetProperty("images")[0].GetString()!);
    }

    [Fact]
    public async Task The_listings_name_the_folders_ControlNets_and_the_built_in_preprocessors()
    {
        var models = await Json.GetAsync(Http, "controlnet/model_list");
        Assert.Equal(["tiny-canny", "tiny-second"], models.GetProperty("model_list").EnumerateArray().Select(e => e.GetString()!));
        var modules = await Json.GetAsync(Http, "controlnet/module_list");
        Assert.Equal(["none", "canny"], modules.GetProperty("module_list").EnumerateArray().Select(e => e.GetString()!));
        Assert.Equal(100, modules.GetProperty("module_detail").GetProperty("canny").GetProperty("sliders")[0].GetProperty("value").GetDouble());
        Assert.Equal(2, (await Json.GetAsync(Http, "controlnet/version")).GetProperty("version").GetInt32());
        var scripts = await Json.GetAsync(Http, "sdapi/v1/scripts");
        Assert.Equal(["controlnet"], scripts.GetProperty("txt2img").EnumerateArray().Select(e => e.GetString()!));
    }

    [Fact]
    public async Task Txt2img_with_two_units_draws_what_the_library_draws()
    {
        var board = Checkerboard(96, 64);
        var png = await FirstImageAsync("sdapi/v1/txt2img", Txt2Img(
            new { enabled = true, image = Convert.ToBase64String(board), module = "canny", model = "tiny-canny [0123abcd]", weight = 0.8, guidance_start = 0.0, guidance_end = 0.75, resize_mode = "Crop and Resize", processor_res = 512, threshold_a = -1, threshold_b = -1, control_mode = "Balanced" },
            new { enabled = true, input_image = Convert.ToBase64String(board), module = "none", model = "tiny-second", weight = 0.5, control_mode = 0 },
            new { enabled = false, model = "no-such-model" }));
        using var pipeline = StableDiffusionPipeline.Load(Model, new PipelineOptions { Device = "cpu" });
        var picture = new InitImage(96, 64, Images.Decode(board).Rgb);
        var expected = await pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = "a red circle", Seed = 3, Steps = 4, GuidanceScale = 7.5f, Width = 96, Height = 64, Scheduler = "euler",
            ControlNets =
            [
                new() { ModelPath = Path.Combine(_controlNets, "tiny-canny"), Image = picture, Preprocessor = ControlPreprocessor.Canny, Scale = 0.8f, GuidanceEnd = 0.75f },
                new() { ModelPath = Path.Combine(_controlNets, "tiny-second"), Image = picture, Scale = 0.5f },
            ],
        }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(expected.Images[0].Rgb, Images.Decode(png).Rgb);
        var plain = await FirstImageAsync("sdapi/v1/txt2img", Txt2Img());
        Assert.NotEqual(Images.Decode(plain).Rgb, Images.Decode(png).Rgb);
    }

    [Fact]
    public async Task Img2img_units_without_an_image_use_the_init_image()
    {
        var init = Convert.ToBase64String(Checkerboard(96, 64));
        object Body(params object[] units) => new
        {
            init_images = new[] { init }, denoising_strength = 0.7, prompt = "a red circle", seed = 3, steps = 4, sampler_name = "Euler",
            alwayson_scripts = new { controlnet = new { args = units } },
        };
        var plain = await FirstImageAsync("sdapi/v1/img2img", Body());
        var controlled = await FirstImageAsync("sdapi/v1/img2img", Body(new { model = "tiny-canny", module = "canny" }));
        var explicitImage = await FirstImageAsync("sdapi/v1/img2img", Body(new { model = "tiny-canny", module = "canny", image = init }));
        Assert.NotEqual(Images.Decode(plain).Rgb, Images.Decode(controlled).Rgb);
        Assert.Equal(Images.Decode(explicitImage).Rgb, Images.Decode(controlled).Rgb);
    }

    [Fact]
    public async Task The_OpenAI_body_takes_units_in_its_controlnets_extension()
    {
        var board = Checkerboard(96, 64);
        object Body(object[]? units) => new
        {
            model = "tiny-controlnet", prompt = "a red circle", size = "96x64", seed = 3, steps = 4, guidance_scale = 7.5, scheduler = "euler",
            response_format = "b64_json", controlnets = units,
        };
        async Task<byte[]> Generate(object[]? units)
        {
            using var response = await Json.PostAsync(Http, "v1/images/generations", Body(units));
            return Convert.FromBase64String((await Json.ReadAsync(response, 200)).GetProperty("data")[0].GetProperty("b64_json").GetString()!);
        }
        var controlled = await Generate([new { model = "tiny-canny", image = Convert.ToBase64String(board), module = "canny", weight = 0.8 }]);
        var viaA1111 = await FirstImageAsync("sdapi/v1/txt2img", Txt2Img(new { model = "tiny-canny", image = Convert.ToBase64String(board), module = "canny", weight = 0.8 }));
        Assert.Equal(Images.Decode(viaA1111).Rgb, Images.Decode(controlled).Rgb);
        Assert.NotEqual(Images.Decode(await Generate(null)).Rgb, Images.Decode(controlled).Rgb);
        using var bad = await Json.PostAsync(Http, "v1/images/generations", Body([new { model = "missing", image = Convert.ToBase64String(board) }]));
        Assert.Equal("controlnets[0].model", (await Json.ReadAsync(bad, 404)).GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task A_missing_ControlNet_folder_is_refused_at_start()
    {
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => TestServer.StartAsync(new ServerOptions { Models = [Model], ControlNetDirectory = "/no/such/controlnets" }));
        Assert.Contains("/no/such/controlnets", e.Message);
    }

    public static TheoryData<string, int, string, string> Refusals => new()
    {
        { """{"model": "no-such-net", "image": "{image}"}""", 404, "alwayson_scripts.controlnet.args[0].model", "tiny-canny, tiny-second" },
        { """{"image": "{image}"}""", 400, "alwayson_scripts.controlnet.args[0].model", "is missing" },
        { """{"model": "tiny-canny", "module": "depth_midas", "image": "{image}"}""", 400, "alwayson_scripts.controlnet.args[0].module", "need their own models" },
        { """{"model": "tiny-canny"}""", 400, "alwayson_scripts.controlnet.args[0].image", "no init image" },
        { """{"model": "tiny-canny", "image": "{image}", "control_mode": 1}""", 400, "alwayson_scripts.controlnet.args[0].control_mode", "not supported" },
        { """{"model": "tiny-canny", "image": "{square}"}""", 400, "alwayson_scripts.controlnet.args[0].resize_mode", "Just Resize" },
        { """{"model": "tiny-canny", "image": "{image}", "weight": 11}""", 400, "alwayson_scripts.controlnet.args[0].weight", "between 0 and 10" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Bad_units_are_refused_naming_the_field(string unit, int status, string param, string message)
    {
        var image = Convert.ToBase64String(Checkerboard(96, 64));
        var square = Convert.ToBase64String(Checkerboard(64, 64));
        var units = unit.Replace("{image}", image).Replace("{square}", square);
        var body = """{"prompt": "x", "steps": 2, "width": 96, "height": 64, "alwayson_scripts": {"controlnet": {"args": [UNITS]}}}""".Replace("UNITS", units);
        using var response = await Http.PostAsync("sdapi/v1/txt2img", Json.Raw(body));
        var error = Json.Error(await Json.ReadAsync(response, status));
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString());
    }
}
