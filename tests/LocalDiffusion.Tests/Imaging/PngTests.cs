using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.Imaging;

public class PngTests
{
    private static GeneratedImage Gradient(string? parameters = null)
    {
        const int w = 16, h = 8;
        var rgb = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var i = (y * w + x) * 3;
                (rgb[i], rgb[i + 1], rgb[i + 2]) = ((byte)(x * 16), (byte)(y * 32), (byte)(255 - x * 8));
            }
        return new GeneratedImage(w, h, rgb, parameters);
    }

    [Fact]
    public void PngDecodesBackToTheSamePixels()
    {
        var image = Gradient();
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "g.png");
        image.SavePng(path);

        Assert.Equal(image.Rgb, GeneratedImage.LoadPng(path).Rgb);
    }

    [Fact]
    public void ParametersTravelAsTextAndUnicodeAsInternationalText()
    {
        var image = Gradient("a cat\nSteps: 20, Seed: 1");
        var png = PngTextChunks.Insert(image.EncodePng(), new Dictionary<string, string> { ["comment"] = "猫 ☕" });

        var texts = PngTextChunks.Read(png);
        Assert.Equal("a cat\nSteps: 20, Seed: 1", texts["parameters"]);
        Assert.Equal("猫 ☕", texts["comment"]);
        Assert.Equal(image.Rgb, GeneratedImage.LoadPng(TestPaths.WriteTempFile(png, ".png")).Rgb); // still a valid PNG (CRCs right)
    }

    [Fact]
    public void ExistingFileIsNotOverwrittenUnlessAsked()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "mine.png");
        File.WriteAllText(path, "precious");

        var e = Assert.Throws<IOException>(() => Gradient().SavePng(path));
        Assert.Contains("already exists", e.Message);
        Assert.Equal("precious", File.ReadAllText(path));

        Gradient().SavePng(path, overwrite: true);
        Assert.Equal(Gradient().Rgb, GeneratedImage.LoadPng(path).Rgb);
    }

    [Fact]
    public void WrongBufferSizeIsRefused() =>
        Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => new GeneratedImage(4, 4, new byte[10]));
}
