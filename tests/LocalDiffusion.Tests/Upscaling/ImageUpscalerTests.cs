using LocalDiffusion.Imaging;
using LocalDiffusion.Latents;
using LocalDiffusion.Onnx;
using LocalDiffusion.Upscaling;

namespace LocalDiffusion.Tests.Upscaling;

/// <summary>
/// The ONNX upscaler on the tiny RRDBNet ESRGANs of models/test/esrgan (tools/build_esrgan_test_models.py): against the torch
/// net's own output, tiled against whole, odd sizes, alpha, float16, and bad files.
/// </summary>
public class ImageUpscalerTests(ITestOutputHelper output)
{
    internal static string Model(string name) => Path.Combine(TestPaths.ModelsDir, "test", "esrgan", name + ".onnx");

    private static RgbaPicture Input() => RgbaPicture.Load(TestPaths.TestData("Upscaling", "input.png"));

    private static float[] Chw(RgbaPicture picture)
    {
        var plane = picture.Width * picture.Height;
        var chw = new float[3 * plane];
        for (var p = 0; p < plane; p++)
            for (var c = 0; c < 3; c++)
                chw[c * plane + p] = picture.Rgb[3 * p + c] / 255f;
        return chw;
    }

    // A picture larger than a tile: the test picture enlarged by Lanczos and given some noise of its own, seeded.
    private static RgbaPicture Large(int width, int height)
    {
        var picture = Input().ResizeLanczos(width, height);
        var random = new Random(3);
        var rgb = picture.Rgb.Select(v => (byte)Math.Clamp(v + random.Next(-20, 21), 0, 255)).ToArray();
        return new RgbaPicture(width, height, rgb);
    }

    // The torch net's float output for input.png (esrgan_x{2,4}_reference.npy); 1e-4 covers float32 summation order.
    [Theory]
    [InlineData("tiny-esrgan-x4", 4, 1e-4)]
    [InlineData("tiny-esrgan-x2", 2, 1e-4)]
    // float16 weights and I/O: input, weights and output round to float16 (2⁻¹¹ relative), so the output differs from the
    // float32 net's by up to 5e-4 (measured); tolerance 2e-3, half an 8-bit level.
    [InlineData("tiny-esrgan-x4-fp16", 4, 2e-3)]
    [InlineData("tiny-esrgan-x2-fp16", 2, 2e-3)]
    public async Task Output_matches_the_torch_model(string name, int scale, double tolerance)
    {
        using var upscaler = ImageUpscaler.Load(Model(name), new UpscalerOptions { TileSize = 0 });
        Assert.Equal(scale, upscaler.Scale);
        Assert.Equal(name.EndsWith("fp16", StringComparison.Ordinal), upscaler.IsFloat16);
        var input = Input();
        var actual = await upscaler.RunAsync(Chw(input), input.Width, input.Height, null, TestContext.Current.CancellationToken);
        var (expected, shape) = NpyFile.Read(TestPaths.TestData("Upscaling", $"esrgan_x{scale}_reference.npy"));
        Assert.Equal([1, 3, input.Height * scale, input.Width * scale], shape);
        var max = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        output.WriteLine($"{name}: max |engine − torch| = {max:E2}");
        Assert.True(max <= tolerance, $"max difference {max:E2} > {tolerance:E0}");
    }

    // Tiles of 64 sharing 32 pixels against one pass over the whole picture. A tile's output is off near its edges, where
    // the net saw zero padding: measured in torch on the x4 net, 0.56 at the edge pixel, 2.5e-2 three pixels in, < 1e-6 from
    // five; the x2 net (its body at half size) < 1e-4 from seven pixels in. The blend ignores each tile's outer 8 pixels and
    // ramps across the next 16. Tolerance 1e-4 (a fortieth of an 8-bit level): no seam shows.
    [Theory]
    [InlineData("tiny-esrgan-x4", 101, 77)]
    [InlineData("tiny-esrgan-x2", 130, 97)]
    public async Task Tiles_blend_without_seams(string name, int width, int height)
    {
        var picture = Large(width, height);
        using var whole = ImageUpscaler.Load(Model(name), new UpscalerOptions { TileSize = 0 });
        using var tiled = ImageUpscaler.Load(Model(name), new UpscalerOptions { TileSize = 64, TileOverlap = 32 });
        var reports = new List<UpscaleProgress>();
        var a = await whole.RunAsync(Chw(picture), width, height, null, TestContext.Current.CancellationToken);
        var b = await tiled.RunAsync(Chw(picture), width, height, new SyncProgress<UpscaleProgress>(reports.Add), TestContext.Current.CancellationToken);
        Assert.Equal(a.Length, b.Length);
        var max = a.Zip(b, (p, q) => Math.Abs(p - q)).Max();
        output.WriteLine($"{name} {width}x{height}: {reports.Count} tiles, max |tiled − whole| = {max:E2}");
        Assert.True(reports.Count >= 6, $"only {reports.Count} tiles: the test must cross seams both ways");
        Assert.Equal(Enumerable.Range(1, reports.Count), reports.Select(r => r.Tile));
        Assert.All(reports, r => Assert.Equal(reports.Count, r.TileCount));
        Assert.True(max <= 1e-4, $"tiles differ from the whole pass by up to {max:E2}");

        // Without the overlap the seams are plain to see: the feathering is what removes them.
        using var hard = ImageUpscaler.Load(Model(name), new UpscalerOptions { TileSize = 64, TileOverlap = 0 });
        var c = await hard.RunAsync(Chw(picture), width, height, null, TestContext.Current.CancellationToken);
        var seams = a.Zip(c, (p, q) => Math.Abs(p - q)).Max();
        output.WriteLine($"{name}: without overlap max |tiled − whole| = {seams:E2}");
        Assert.True(seams > 10 * max, $"without overlap {seams:E2}, with {max:E2}");
    }

    // An export whose input is fixed to [1,3,64,64] (tools/build_esrgan_test_models.py, the x4 net's weights): it runs tiles of
    // 64 sharing 32 pixels, as the dynamic model does with those options (Tiles_blend_without_seams), and a picture smaller
    // than 64 is padded by repeating its edge and cropped.
    [Fact]
    public async Task A_model_with_a_fixed_input_size_runs_tiles_of_that_size()
    {
        var path = Path.Combine(TestPaths.ModelsDir, "test", "esrgan-static", "tiny-esrgan-x4-static64.onnx");
        using var fixedSize = ImageUpscaler.Load(path);
        Assert.Equal((4, 64, 64), (fixedSize.Scale, fixedSize.FixedWidth, fixedSize.FixedHeight));
        using var whole = ImageUpscaler.Load(Model("tiny-esrgan-x4"), new UpscalerOptions { TileSize = 0 });
        var ct = TestContext.Current.CancellationToken;
        var picture = Large(101, 77);
        var a = await whole.RunAsync(Chw(picture), 101, 77, null, ct);
        var b = await fixedSize.RunAsync(Chw(picture), 101, 77, null, ct);
        var max = a.Zip(b, (p, q) => Math.Abs(p - q)).Max();
        output.WriteLine($"fixed 64x64 input, 101x77 picture: max |tiled − whole| = {max:E2}");
        Assert.True(max <= 1e-4, $"max difference {max:E2}");
        var small = await fixedSize.UpscaleAsync(Input(), cancellationToken: ct);
        Assert.Equal((80, 56), (small.Width, small.Height));
    }

    // Odd sides: the x2 model needs even input sides (it pixel-unshuffles by 2), so the edge is repeated and cropped off.
    [Theory]
    [InlineData("tiny-esrgan-x2", 13, 9)]
    [InlineData("tiny-esrgan-x4", 13, 9)]
    [InlineData("tiny-esrgan-x2", 1, 1)]
    public async Task Odd_sizes_come_out_exactly_scale_times_larger(string name, int width, int height)
    {
        using var upscaler = ImageUpscaler.Load(Model(name));
        var result = await upscaler.UpscaleAsync(Input().ResizeLanczos(width, height), cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal((width * upscaler.Scale, height * upscaler.Scale), (result.Width, result.Height));
        Assert.Null(result.Alpha);
    }

    // Alpha goes around the network: enlarged by Pillow's Lanczos (byte-exact, LanczosResamplerTests), RGB as without alpha.
    [Fact]
    public async Task Alpha_is_kept_and_enlarged_by_lanczos()
    {
        var rgb = Input();
        var alpha = new byte[rgb.Width * rgb.Height];
        for (var y = 0; y < rgb.Height; y++)
            for (var x = 0; x < rgb.Width; x++)
                alpha[y * rgb.Width + x] = (byte)(x < 5 ? 0 : 255 * y / (rgb.Height - 1));
        var withAlpha = RgbaPicture.Decode(new RgbaPicture(rgb.Width, rgb.Height, rgb.Rgb, alpha).EncodePng(), "test");
        Assert.Equal(alpha, withAlpha.Alpha);
        using var upscaler = ImageUpscaler.Load(Model("tiny-esrgan-x4"));
        var ct = TestContext.Current.CancellationToken;
        var a = await upscaler.UpscaleAsync(withAlpha, cancellationToken: ct);
        var b = await upscaler.UpscaleAsync(rgb, cancellationToken: ct);
        Assert.Equal(b.Rgb, a.Rgb);
        Assert.Equal(LanczosResampler.Resize(alpha, rgb.Width, rgb.Height, 1, a.Width, a.Height), a.Alpha);
        // And it survives the PNG round trip.
        Assert.Equal(a.Alpha, RgbaPicture.Decode(a.EncodePng(), "result").Alpha);
    }

    // A1111's upscale to a size: passes until both sides are reached (a 20x14 picture needs two x2 passes for 70x40), then Lanczos.
    [Fact]
    public async Task Upscale_to_a_size_runs_passes_then_lanczos()
    {
        using var upscaler = ImageUpscaler.Load(Model("tiny-esrgan-x2"));
        var ct = TestContext.Current.CancellationToken;
        var input = Input();
        var twice = await upscaler.UpscaleAsync(await upscaler.UpscaleAsync(input, cancellationToken: ct), cancellationToken: ct);
        var sized = await upscaler.UpscaleToAsync(input, 70, 40, cancellationToken: ct);
        Assert.Equal(twice.ResizeLanczos(70, 40).Rgb, sized.Rgb);

        // Lanczos as the baseline: how far the random tiny net's picture is from a plain Lanczos enlargement (reported, not
        // judged — a random net does not make a better picture).
        var lanczos = input.ResizeLanczos(input.Width * 2, input.Height * 2);
        var once = await upscaler.UpscaleAsync(input, cancellationToken: ct);
        var mean = lanczos.Rgb.Zip(once.Rgb, (p, q) => Math.Abs(p - q)).Average();
        output.WriteLine($"tiny-esrgan-x2 vs Lanczos on input.png: mean |Δ| = {mean:0.0} levels");
    }

    [Fact]
    public async Task Cancellation_stops_between_tiles()
    {
        using var upscaler = ImageUpscaler.Load(Model("tiny-esrgan-x4"), new UpscalerOptions { TileSize = 32, TileOverlap = 8 });
        using var cts = new CancellationTokenSource();
        var tiles = 0;
        var progress = new SyncProgress<UpscaleProgress>(p => { tiles = p.Tile; if (p.Tile == 2) cts.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => upscaler.UpscaleAsync(Large(100, 100), progress, cts.Token));
        Assert.Equal(2, tiles);
    }

    [Fact]
    public void Bad_files_and_options_are_refused_naming_them()
    {
        // A VAE decoder is ONNX with one image-shaped input of dynamic channels, but a 3-channel probe does not run.
        var vae = Path.Combine(TestPaths.ModelsDir, "test", "tiny", "vae_decoder", "model.onnx");
        var e = Assert.Throws<ModelLoadException>(() => ImageUpscaler.Load(vae));
        Assert.Contains(vae, e.Message);
        Assert.Contains("an image-to-image upscaler was expected", e.Message);
        // A text encoder takes token ids.
        var encoder = Path.Combine(TestPaths.ModelsDir, "test", "tiny", "text_encoder", "model.onnx");
        Assert.Contains("[batch,3,height,width]", Assert.Throws<ModelLoadException>(() => ImageUpscaler.Load(encoder)).Message);

        var missing = Path.Combine(Path.GetTempPath(), $"ld-missing-{Guid.NewGuid():N}.onnx");
        Assert.Contains("no such file", Assert.Throws<ModelLoadException>(() => ImageUpscaler.Load(missing)).Message);

        var garbage = TestPaths.WriteTempFile("not an onnx model"u8.ToArray(), ".onnx");
        Assert.Contains("cannot open it as a model", Assert.Throws<ModelLoadException>(() => ImageUpscaler.Load(garbage)).Message);

        var several = Path.Combine(TestPaths.ModelsDir, "test", "esrgan");
        Assert.Contains("4 .onnx files", Assert.Throws<ModelLoadException>(() => ImageUpscaler.Load(several)).Message);

        var pointer = TestPaths.WriteTempFile("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n"u8.ToArray(), ".onnx");
        Assert.Contains("Git LFS pointer", Assert.Throws<ModelLoadException>(() => ImageUpscaler.Load(pointer)).Message);

        var tile = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => ImageUpscaler.Load(Model("tiny-esrgan-x2"), new UpscalerOptions { TileSize = 8 }));
        Assert.Equal("TileSize", tile.ParamName);
        var overlap = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => ImageUpscaler.Load(Model("tiny-esrgan-x2"), new UpscalerOptions { TileSize = 64, TileOverlap = 40 }));
        Assert.Equal("TileOverlap", overlap.ParamName);
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
