using LocalDiffusion.Latents;

namespace LocalDiffusion.Tests.ImageToImage;

/// <summary>The mask rules: diffusers' binarise + nearest without blur; a soft edge with blur.</summary>
public class InpaintMaskTests
{
    [Fact]
    public void WithoutBlurTheLatentMaskIsBinaryAndNearestSampled()
    {
        var latent = InpaintMask.ToLatent(Img2ImgDiffusersParityTests.LeftHalfMask(64, 64), 8, 8, 0f);
        for (var i = 0; i < 8; i++)
            for (var j = 0; j < 8; j++)
                Assert.Equal(j < 4 ? 1f : 0f, latent[i * 8 + j]);
    }

    [Fact]
    public void BlurGivesASoftEdgeAndKeepsTheFarRegions()
    {
        var mask = Img2ImgDiffusersParityTests.LeftHalfMask(64, 64);
        var pixels = InpaintMask.ToPixels(mask, 4f);
        Assert.Equal(1f, pixels[10], 3);            // far inside the repainted half
        Assert.Equal(0f, pixels[60], 3);            // far inside the kept half
        Assert.InRange(pixels[32], 0.1f, 0.9f);     // at the edge: mixed
        var latent = InpaintMask.ToLatent(mask, 8, 8, 4f);
        Assert.InRange(latent[4], 0.01f, 0.99f);    // the first kept latent column is partly repainted
        Assert.Equal(1f, latent[0], 3);
    }
}
