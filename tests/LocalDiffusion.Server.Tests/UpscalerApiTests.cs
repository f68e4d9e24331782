using LocalDiffusion.Imaging;
using System.Text.Json;
using LocalDiffusion.Upscaling;

namespace LocalDiffusion.Server.Tests;

/// <summary>A server started with <c>--upscaler-dir models/test/esrgan</c> (the tiny RRDBNets of tools/build_esrgan_test_models.py).</summary>
public sealed class UpscalerServer : IAsyncLifetime
{
    public static string Folder => Repo.Model("test", "esrgan");

    internal TestServer Instance { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Instance = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], UpscalerDirectory = Folder });

    public async ValueTask DisposeAsync() => await Instance.DisposeAsync();
}

/// <summary>
/// /sdapi/v1/upscalers, /sdapi/v1/extra-single-image and the hires fix's hr_upscaler with ESRGAN models, through a real
/// HTTP client. Pixel checks compare with the engine's own A1111Upscale (whose model output is checked against torch in
/// LocalDiffusion.Tests' ImageUpscalerTests and whose Lanczos is checked against PIL): here the route's plumbing is tested.
/// </summary>
public sealed class UpscalerApiTests(UpscalerServer shared) : IClassFixture<UpscalerServer>
{
    private HttpClient Http => shared.Instance.Http;

    // 40×24 with a gradient, a square and an alpha ramp (the left 6 columns fully transparent).
    private static byte[] Picture() => Images.Png(40, 24, (x, y) => ((byte)(x * 6), (byte)(y * 10), (byte)(x > 10 && x < 20 && y > 5 && y < 15 ? 240 : 30), (byte)(x < 6 ? 0 : 128 + y * 5)));

    private async Task<(RgbaPicture Image, string Info)> ExtrasAsync(object body)
    {
        using var response = await Json.PostAsync(Http, "sdapi/v1/extra-single-image", body);
        var json = await Json.ReadAsync(response, 200);
        var image = RgbaPicture.Decode(Convert.FromBase64String(json.GetProperty("image").GetString()!), "response");
        return (image, json.GetProperty("html_info").GetString()!);
    }

    [Fact]
    public async Task Upscalers_lists_the_folder_models_beside_the_built_ins()
    {
        var list = (await Json.GetAsync(Http, "sdapi/v1/upscalers")).EnumerateArray().ToList();
        Assert.Equal(["None", "Lanczos", "Nearest", "tiny-esrgan-x2", "tiny-esrgan-x2-fp16", "tiny-esrgan-x4", "tiny-esrgan-x4-fp16"],
            list.Select(u => u.GetProperty("name").GetString()));
        var x2 = list.Single(u => u.GetProperty("name").GetString() == "tiny-esrgan-x2");
        Assert.Equal(2.0, x2.GetProperty("scale").GetDouble());
        Assert.Equal(Path.GetFullPath(Path.Combine(UpscalerServer.Folder, "tiny-esrgan-x2.onnx")), x2.GetProperty("model_path").GetString());
        Assert.Equal(4.0, list.Single(u => u.GetProperty("name").GetString() == "tiny-esrgan-x4-fp16").GetProperty("scale").GetDouble());
    }

    [Theory]
    [InlineData("tiny-esrgan-x2")]
    [InlineData("tiny-esrgan-x4-fp16")]
    [InlineData("Lanczos")]
    public async Task Extras_upscales_by_a_factor_keeping_alpha(string upscaler)
    {
        var png = Picture();
        var (image, info) = await ExtrasAsync(new { image = Convert.ToBase64String(png), resize_mode = 0, upscaling_resize = 2, upscaler_1 = upscaler });
        Assert.Equal((80, 48), (image.Width, image.Height));
        Assert.Equal($"<p>Postprocess upscale by: 2, Postprocess upscaler: {upscaler}</p>", info);
        var source = RgbaPicture.Decode(png, "test");
        using var model = upscaler.StartsWith("tiny", StringComparison.Ordinal) ? ImageUpscaler.Load(Path.Combine(UpscalerServer.Folder, upscaler + ".onnx")) : null;
        var expected = model is null ? source.ResizeLanczos(80, 48) : (await model.UpscaleAsync(source, cancellationToken: TestContext.Current.CancellationToken)).ResizeLanczos(80, 48);
        Assert.Equal(expected.Rgb, image.Rgb);
        // Alpha by Lanczos alongside: straight to 80×48, or through the x4 model's 160×96 and back down to 80×48.
        var alpha = upscaler.Contains("x4", StringComparison.Ordinal)
            ? LanczosResampler.Resize(LanczosResampler.Resize(source.Alpha!, 40, 24, 1, 160, 96), 160, 96, 1, 80, 48)
            : LanczosResampler.Resize(source.Alpha!, 40, 24, 1, 80, 48);
        Assert.Equal(alpha, image.Alpha);
    }

    [Fact]
    public async Task Extras_to_a_size_crops_and_blends_a_second_upscaler()
    {
        var png = Convert.ToBase64String(Picture());
        // 40×24 to 64×64: the factor that covers both sides is 64/24, so 106×64 (rounded down to 8s: 104×64) is centre-cropped.
        var (cropped, info) = await ExtrasAsync(new { image = png, resize_mode = 1, upscaling_resize_w = 64, upscaling_resize_h = 64, upscaler_1 = "tiny-esrgan-x4" });
        Assert.Equal((64, 64), (cropped.Width, cropped.Height));
        Assert.Contains("Postprocess upscale to: 64x64", info);
        Assert.Contains("Postprocess crop to: 64x64", info);

        var (a, _) = await ExtrasAsync(new { image = png, upscaling_resize = 2, upscaler_1 = "tiny-esrgan-x2" });
        var (b, _) = await ExtrasAsync(new { image = png, upscaling_resize = 2, upscaler_1 = "Nearest" });
        var (blend, blendInfo) = await ExtrasAsync(new { image = png, upscaling_resize = 2, upscaler_1 = "tiny-esrgan-x2", upscaler_2 = "Nearest", extras_upscaler_2_visibility = 0.25 });
        Assert.Contains("Postprocess upscaler 2: Nearest", blendInfo);
        // PIL's Image.blend: a + (b − a)·0.25, rounded; ±1 for rounding at .5.
        for (var i = 0; i < blend.Rgb.Length; i++)
            Assert.InRange(blend.Rgb[i], a.Rgb[i] + (b.Rgb[i] - a.Rgb[i]) * 0.25 - 1, a.Rgb[i] + (b.Rgb[i] - a.Rgb[i]) * 0.25 + 1);
    }

    [Fact]
    public async Task Extras_with_upscaler_none_returns_the_picture_as_it_was()
    {
        var (image, info) = await ExtrasAsync(new { image = Convert.ToBase64String(Picture()), upscaling_resize = 2, upscaler_1 = "None" });
        Assert.Equal((40, 24), (image.Width, image.Height));
        Assert.Equal("", info);
    }

    [Fact]
    public async Task Extras_refusals_name_the_field()
    {
        var png = Convert.ToBase64String(Picture());
        var error = await RefusedAsync(new { image = png, upscaler_1 = "R-ESRGAN 4x+" }, "upscaler_1");
        Assert.Contains("'tiny-esrgan-x4'", error);
        await RefusedAsync(new { image = png, upscaler_1 = "Lanczos", upscaler_2 = "4x-UltraSharp", extras_upscaler_2_visibility = 0.5 }, "upscaler_2");
        await RefusedAsync(new { upscaler_1 = "Lanczos" }, "image");
        await RefusedAsync(new { image = "not base64!", upscaler_1 = "Lanczos" }, "image");
        await RefusedAsync(new { image = png, upscaler_1 = "Lanczos", gfpgan_visibility = 0.5 }, "gfpgan_visibility");
        await RefusedAsync(new { image = png, upscaler_1 = "Lanczos", upscaling_resize = 200 }, "upscaling_resize");
    }

    [Fact]
    public async Task Hires_fix_accepts_an_esrgan_upscaler()
    {
        using var response = await Json.PostAsync(Http, "sdapi/v1/txt2img", new
        {
            prompt = "a large red circle in the center on a blue background", seed = 5, steps = 4, width = 64, height = 64,
            enable_hr = true, hr_scale = 2, hr_upscaler = "tiny-esrgan-x2", denoising_strength = 0.5,
        });
        var json = await Json.ReadAsync(response, 200);
        var png = Convert.FromBase64String(json.GetProperty("images")[0].GetString()!);
        Assert.Equal((128, 128), (Images.Decode(png).Width, Images.Decode(png).Height));
        var info = JsonDocument.Parse(json.GetProperty("info").GetString()!).RootElement;
        Assert.Contains("Hires upscaler: tiny-esrgan-x2", info.GetProperty("infotexts")[0].GetString());

        using var unknown = await Json.PostAsync(Http, "sdapi/v1/txt2img", new { prompt = "x", steps = 1, width = 64, height = 64, enable_hr = true, hr_upscaler = "4x-UltraSharp" });
        var error = Json.Error(await Json.ReadAsync(unknown, 400));
        Assert.Equal("hr_upscaler", error.GetProperty("param").GetString());
        Assert.Contains("'tiny-esrgan-x2'", error.GetProperty("message").GetString());
    }

    // A file in the folder that is not an upscaler: listed with scale null, and a request naming it is a 500 naming the file.
    [Fact]
    public async Task A_broken_model_in_the_folder_is_named_when_used()
    {
        var folder = Directory.CreateTempSubdirectory("ld-upscalers-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(folder, "broken.onnx"), "not an onnx model"u8.ToArray());
            await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], UpscalerDirectory = folder });
            var broken = Assert.Single((await Json.GetAsync(server.Http, "sdapi/v1/upscalers")).EnumerateArray(), u => u.GetProperty("name").GetString() == "broken");
            Assert.Equal(JsonValueKind.Null, broken.GetProperty("scale").ValueKind);
            using var response = await Json.PostAsync(server.Http, "sdapi/v1/extra-single-image", new { image = Convert.ToBase64String(Picture()), upscaler_1 = "broken" });
            var error = Json.Error(await Json.ReadAsync(response, 500));
            Assert.Contains(Path.Combine(folder, "broken.onnx"), error.GetProperty("message").GetString());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private async Task<string> RefusedAsync(object body, string field)
    {
        using var response = await Json.PostAsync(Http, "sdapi/v1/extra-single-image", body);
        var error = Json.Error(await Json.ReadAsync(response, 400));
        Assert.Equal(field, error.GetProperty("param").GetString());
        return error.GetProperty("message").GetString()!;
    }
}
