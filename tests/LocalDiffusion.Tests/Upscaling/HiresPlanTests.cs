using LocalDiffusion.Upscaling;

namespace LocalDiffusion.Tests.Upscaling;

/// <summary>
/// The hires plan's sizes and steps, as A1111's StableDiffusionProcessingTxt2Img computes them (init: hr_scale or
/// hr_resize_x/y, truncated; sample_hr_pass: exactly hr_second_pass_steps steps over a schedule of steps / strength), and its
/// refusals, each naming the option.
/// </summary>
public class HiresPlanTests
{
    [Theory]
    // scale: int(side · scale), then the model's multiple of 8
    [InlineData(2.0, 0, 0, 64, 48, 128, 96)]
    [InlineData(1.5, 0, 0, 64, 48, 96, 72)]
    [InlineData(1.3, 0, 0, 64, 64, 80, 80)] // 83.2 → 83 → 80
    // resize: one side 0 keeps the aspect ratio (integer division, as A1111), both given stretch
    [InlineData(2.0, 100, 0, 64, 48, 96, 72)] // 100×75 → 96×72
    [InlineData(2.0, 0, 96, 64, 48, 128, 96)]
    [InlineData(2.0, 160, 96, 64, 48, 160, 96)]
    public void Sizes_follow_a1111(double scale, int resizeW, int resizeH, int width, int height, int toW, int toH)
    {
        var plan = HiresPlan.Create(new HiresOptions { Scale = scale, ResizeWidth = resizeW, ResizeHeight = resizeH }, width, height, 20, 8);
        Assert.Equal((toW, toH), (plan.Width, plan.Height));
        Assert.Equal(LatentUpscaleMode.Bilinear, plan.Latent); // A1111's default upscaler, "Latent"
        Assert.Equal(resizeW == 0 && resizeH == 0 ? "Hires upscale" : "Hires resize", plan.Parameters.Keys.First());
    }

    [Theory]
    [InlineData(0, 0.7f, 20, 20, 29)] // int(29 · 0.7) = 20
    [InlineData(3, 0.7f, 20, 3, 5)]   // int(5 · 0.7) = 3
    [InlineData(10, 0.5f, 20, 10, 20)]
    [InlineData(7, 1f, 20, 7, 7)]
    public void The_second_pass_runs_exactly_the_hires_steps(int hiresSteps, float strength, int firstSteps, int secondSteps, int engineSteps)
    {
        var plan = HiresPlan.Create(new HiresOptions { SecondPassSteps = hiresSteps, Strength = strength }, 64, 64, firstSteps, 8);
        Assert.Equal(secondSteps, plan.SecondSteps);
        Assert.Equal(engineSteps, plan.EngineSteps);
        Assert.Equal(secondSteps, (int)(plan.EngineSteps * strength));
    }

    [Theory]
    [InlineData("Lanczos")]
    [InlineData("Nearest")]
    [InlineData("None")]
    public void Image_upscalers_enlarge_the_picture_not_the_latents(string upscaler)
    {
        var plan = HiresPlan.Create(new HiresOptions { Upscaler = upscaler }, 64, 64, 20, 8);
        Assert.Null(plan.Latent);
        Assert.Equal(upscaler, plan.Parameters["Hires upscaler"]);
    }

    [Fact]
    public void Refusals_name_the_option()
    {
        static string Refused(HiresOptions o) => Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => HiresPlan.Create(o, 64, 64, 20, 8)).ParamName!;
        Assert.Equal("Hires.Scale", Refused(new HiresOptions { Scale = 0.5 }));
        Assert.Equal("Hires.Scale", Refused(new HiresOptions { Scale = double.NaN }));
        Assert.Equal("Hires.ResizeWidth", Refused(new HiresOptions { ResizeWidth = 32 }));
        Assert.Equal("Hires.ResizeWidth", Refused(new HiresOptions { ResizeWidth = -1 }));
        Assert.Equal("Hires.Upscaler", Refused(new HiresOptions { Upscaler = "R-ESRGAN 4x+" }));
        Assert.Equal("Hires.Strength", Refused(new HiresOptions { Strength = 0 }));
        Assert.Equal("Hires.SecondPassSteps", Refused(new HiresOptions { SecondPassSteps = -1 }));
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => HiresPlan.Create(new HiresOptions { ResizeWidth = 48, ResizeHeight = 80 }, 64, 64, 20, 8));
        Assert.Contains("48x80 is smaller than the first pass's 64x64", e.Message);
    }
}
