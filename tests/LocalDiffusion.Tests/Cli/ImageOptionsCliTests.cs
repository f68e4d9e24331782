using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.Cli;

/// <summary><c>generate --init-image --strength --mask --mask-blur --eta</c>.</summary>
public class ImageOptionsCliTests
{
    private static readonly string[] Common =
        ["generate", "--model", TestModels.PathOf("tiny"), "--prompt", "a cat", "--steps", "4", "--seed", "3", "--device", "cpu"];

    [Fact]
    public async Task Img2ImgAndInpaintingFromFiles()
    {
        using var dir = new TempDirectory();
        string source = Path.Combine(dir.Path, "source.png"), changed = Path.Combine(dir.Path, "changed.png");
        string mask = Path.Combine(dir.Path, "mask.png"), inpainted = Path.Combine(dir.Path, "inpainted.png");
        Assert.Equal(0, (await CliRunner.Run([.. Common, "--width", "64", "--height", "64", "--out", source])).Code);
        new GeneratedImage(64, 64, ImageToImage.Img2ImgDiffusersParityTests.LeftHalfMask(64, 64).Rgb).SavePng(mask);

        var (code, _, error) = await CliRunner.Run([.. Common, "--init-image", source, "--strength", "0.5", "--eta", "0.3", "--out", changed]);
        Assert.True(code == 0, error);
        var parameters = PngTextChunks.Read(File.ReadAllBytes(changed))["parameters"];
        Assert.Contains("Denoising strength: 0.5", parameters);
        Assert.Contains("Eta: 0.3", parameters);
        Assert.Equal(64, GeneratedImage.LoadPng(changed).Width); // the init image's size

        (code, _, error) = await CliRunner.Run([.. Common, "--init-image", source, "--mask", mask, "--mask-blur", "2", "--out", inpainted]);
        Assert.True(code == 0, error);
        Assert.Contains("Denoising strength: 1, Mask blur: 2", PngTextChunks.Read(File.ReadAllBytes(inpainted))["parameters"]);
    }

    // Issue 20: a mask drawn as transparency over flat black was read as all black and repainted nothing. Its
    // transparent pixels are the mask: the run must equal the same run with the opaque white-on-black mask.
    [Fact]
    public async Task AMaskCarriedInTheAlphaChannelRepaintsWhatTheSameRgbMaskRepaints()
    {
        using var dir = new TempDirectory();
        string source = Path.Combine(dir.Path, "source.png"), rgbMask = Path.Combine(dir.Path, "rgb.png"), alphaMask = Path.Combine(dir.Path, "alpha.png");
        Assert.Equal(0, (await CliRunner.Run([.. Common, "--width", "64", "--height", "64", "--out", source])).Code);
        new GeneratedImage(64, 64, ImageToImage.Img2ImgDiffusersParityTests.LeftHalfMask(64, 64).Rgb).SavePng(rgbMask);
        var rgba = new byte[64 * 64 * 4];
        for (var y = 0; y < 64; y++)
            for (var x = 0; x < 64; x++)
                rgba[(y * 64 + x) * 4 + 3] = (byte)(x < 32 ? 0 : 255); // black everywhere; the left half transparent
        using (var bitmap = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(64, 64, SkiaSharp.SKColorType.Rgba8888, SkiaSharp.SKAlphaType.Unpremul)))
        {
            System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
            using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(alphaMask, data.ToArray());
        }
        string fromRgb = Path.Combine(dir.Path, "from-rgb.png"), fromAlpha = Path.Combine(dir.Path, "from-alpha.png");
        var (code, _, error) = await CliRunner.Run([.. Common, "--init-image", source, "--mask", rgbMask, "--out", fromRgb]);
        Assert.True(code == 0, error);
        (code, _, error) = await CliRunner.Run([.. Common, "--init-image", source, "--mask", alphaMask, "--out", fromAlpha]);
        Assert.True(code == 0, error);
        var expected = GeneratedImage.LoadPng(fromRgb).Rgb;
        var actual = GeneratedImage.LoadPng(fromAlpha).Rgb;
        Assert.Equal(expected, actual);
        Assert.NotEqual(GeneratedImage.LoadPng(source).Rgb, actual); // the left half was repainted
    }

    [Fact]
    public async Task MaskWithoutInitImageIsRefused()
    {
        using var dir = new TempDirectory();
        var mask = Path.Combine(dir.Path, "mask.png");
        new GeneratedImage(64, 64, new byte[64 * 64 * 3]).SavePng(mask);
        var (code, _, error) = await CliRunner.Run([.. Common, "--mask", mask, "--out", Path.Combine(dir.Path, "x.png")]);
        Assert.NotEqual(0, code);
        Assert.Contains("--init-image", error);
    }

    [Fact]
    public async Task MissingInitImageFileIsNamed()
    {
        using var dir = new TempDirectory();
        var (code, _, error) = await CliRunner.Run([.. Common, "--init-image", "/no/such/picture.png", "--out", Path.Combine(dir.Path, "x.png")]);
        Assert.NotEqual(0, code);
        Assert.Contains("/no/such/picture.png", error);
    }
}

/// <summary>Outpainting: padding + mask.</summary>
public class OutpaintingTests
{
    [Fact]
    public void PadRepeatsTheEdgesAndMasksThePadding()
    {
        var picture = ImageToImage.Img2ImgDiffusersParityTests.Picture(16, 8);
        var (image, mask) = Outpainting.Pad(picture, 8, 0, 0, 8);
        Assert.Equal((24, 16), (image.Width, image.Height));
        Assert.Equal(picture.Rgb[..3], image.Rgb[..3]);                       // top-left padding copies pixel (0, 0)
        Assert.Equal(picture.Rgb.AsSpan(0, 3).ToArray(), image.Rgb.AsSpan(8 * 3, 3).ToArray()); // the picture starts at x = 8
        Assert.Equal(255, mask.Rgb[0]);
        Assert.Equal(0, mask.Rgb[8 * 3]);
        Assert.Equal(255, mask.Rgb[(15 * 24 + 12) * 3]);                      // bottom padding
    }

    [Fact]
    public void MarginsThatBreakTheMultipleOfEightAreRefused()
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => Outpainting.Pad(ImageToImage.Img2ImgDiffusersParityTests.Picture(16, 8), 4, 0, 0, 0));
        Assert.Contains("multiples of 8", e.Message);
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => Outpainting.ParseMargins("sideways=8"));
        Assert.Equal((64, 0, 32, 0), Outpainting.ParseMargins("left=64, right=32"));
    }

    [Fact]
    public async Task CliOutpaintsAndKeepsTheOriginal()
    {
        using var dir = new TempDirectory();
        string source = Path.Combine(dir.Path, "source.png"), wide = Path.Combine(dir.Path, "wide.png");
        string[] common = ["generate", "--model", TestModels.PathOf("tiny"), "--prompt", "a cat", "--steps", "4", "--seed", "3", "--device", "cpu"];
        Assert.Equal(0, (await CliRunner.Run([.. common, "--width", "64", "--height", "64", "--out", source])).Code);
        var (code, _, error) = await CliRunner.Run([.. common, "--init-image", source, "--outpaint", "left=32", "--out", wide]);
        Assert.True(code == 0, error);
        var result = GeneratedImage.LoadPng(wide);
        Assert.Equal((96, 64), (result.Width, result.Height));
        var original = GeneratedImage.LoadPng(source);
        Assert.Equal(original.Rgb.AsSpan(0, 64 * 3).ToArray(), result.Rgb.AsSpan(32 * 3, 64 * 3).ToArray()); // first row, pasted back
    }
}
