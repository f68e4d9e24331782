using LocalDiffusion.Imaging;

namespace LocalDiffusion.Tests.Imaging;

/// <summary>
/// Init images and masks are read upright, as viewers show them: a JPEG's EXIF Orientation tag is applied. SkiaSharp
/// cannot write EXIF, so the test JPEG is SkiaSharp's with an APP1 Exif segment (one Orientation entry) spliced in.
/// </summary>
public class ExifOrientationTests
{
    // 32x16 stored pixels: the top-left quadrant red, the rest blue (asymmetric both ways, so flips show too).
    private static byte[] Jpeg(int orientation)
    {
        const int w = 32, h = 16;
        var rgb = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
            {
                var red = x < w / 2 && y < h / 2;
                rgb[(y * w + x) * 3] = red ? (byte)255 : (byte)0;
                rgb[(y * w + x) * 3 + 2] = red ? (byte)0 : (byte)255;
            }
        var jpeg = ImageEncoder.Encode(new GeneratedImage(w, h, rgb), ImageFormat.Jpeg);
        byte[] tiff =
        [
            (byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8, // big-endian TIFF header, IFD at offset 8
            0, 1, // one entry
            0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, (byte)orientation, 0, 0, // Orientation, SHORT, count 1, value
            0, 0, 0, 0, // no next IFD
        ];
        byte[] exif = [.. "Exif\0\0"u8, .. tiff];
        var length = exif.Length + 2;
        byte[] app1 = [0xFF, 0xE1, (byte)(length >> 8), (byte)length, .. exif];
        return [.. jpeg[..2], .. app1, .. jpeg[2..]]; // right after SOI
    }

    [Theory]
    [InlineData(1, 32, 16, false, false)]
    [InlineData(2, 32, 16, true, false)]  // mirrored
    [InlineData(3, 32, 16, true, true)]   // rotated 180°
    [InlineData(4, 32, 16, false, true)]  // flipped
    [InlineData(5, 16, 32, false, false)] // transposed
    [InlineData(6, 16, 32, true, false)]  // rotated 90° clockwise (a phone's portrait shot)
    [InlineData(7, 16, 32, true, true)]   // transverse
    [InlineData(8, 16, 32, false, true)]  // rotated 90° counter-clockwise
    public void TheExifOrientationIsApplied(int orientation, int width, int height, bool redRight, bool redBottom)
    {
        var (image, _) = InitImage.Decode(Jpeg(orientation), "test.jpg");
        Assert.Equal((width, height), (image.Width, image.Height));
        for (var qy = 0; qy < 2; qy++)
            for (var qx = 0; qx < 2; qx++)
            {
                int x = qx * width / 2 + width / 4, y = qy * height / 2 + height / 4;
                var red = image.Rgb[(y * width + x) * 3] > 128;
                Assert.True(red == (qx == 1 == redRight && qy == 1 == redBottom), $"orientation {orientation}: quadrant ({qx},{qy}) red={red}");
            }
    }

    [Fact]
    public void AFileIsReadUprightToo()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "portrait.jpg");
        File.WriteAllBytes(path, Jpeg(6));
        var image = InitImage.FromPng(path);
        Assert.Equal((16, 32), (image.Width, image.Height));
    }
}
