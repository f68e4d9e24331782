namespace LocalDiffusion.Tests.ImageToImage;

/// <summary>img2img and inpainting on every tiny format variant: the same weights give the same latents where the interface allows.</summary>
public class Img2ImgVariantTests
{
    [Theory]
    [InlineData("tiny-optimum", 1e-5)]   // int64 ids, scalar float timestep, vae config.json
    [InlineData("tiny-static", 1e-5)]    // batch fixed to 1, 64×64 encoder
    [InlineData("tiny-fp16", 5e-2)]      // float16 I/O and weights
    public async Task VariantGivesTinysLatents(string variant, double tolerance)
    {
        var token = TestContext.Current.CancellationToken;
        foreach (var mask in new[] { null, Img2ImgDiffusersParityTests.LeftHalfMask(64, 64) })
        {
            var request = TestModels.Request() with
            {
                Steps = 6,
                Strength = 0.7f,
                InitImage = Img2ImgDiffusersParityTests.Picture(64, 64),
                MaskImage = mask,
                Scheduler = "euler_a",
            };
            var expected = (await TestModels.Pipeline("tiny").GenerateAsync(request, cancellationToken: token)).FinalLatents;
            var actual = (await TestModels.Pipeline(variant).GenerateAsync(request, cancellationToken: token)).FinalLatents;
            var scale = expected.Max(MathF.Abs);
            Schedulers.Tolerance.AssertClose(expected, actual, $"{variant} mask={mask is not null}", relative: 0, absolute: tolerance * scale);
        }
    }

    [Fact]
    public async Task LatentSampleEncoderExportRuns()
    {
        // tiny-external's encoder returns latent_sample [B,4,h,w] (the diffusers conversion script's form), used as it is.
        var result = await TestModels.Pipeline("tiny-external").GenerateAsync(TestModels.Request() with
        {
            InitImage = Img2ImgDiffusersParityTests.Picture(64, 64),
        }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.All(result.FinalLatents, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(64, result.Images[0].Width);
    }
}
