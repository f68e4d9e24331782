namespace LocalDiffusion.Tests.Pipeline;

/// <summary>GenerationRequest.PreviewSteps: decoded intermediate latents in GenerationProgress.Preview (what the server streams).</summary>
public class PreviewTests
{
    private sealed class Collect : IProgress<GenerationProgress>
    {
        public List<GenerationProgress> Reports { get; } = [];

        public void Report(GenerationProgress value) => Reports.Add(value);
    }

    [Fact]
    public async Task Previews_come_at_the_asked_steps_and_do_not_change_the_picture()
    {
        var pipeline = TestModels.Pipeline("tiny");
        var request = TestModels.Request() with { Scheduler = "euler_a", Steps = 6, ImageCount = 2 };
        var plain = await pipeline.GenerateAsync(request);

        var progress = new Collect();
        var previewed = await pipeline.GenerateAsync(request with { PreviewSteps = [2, 4] }, progress);

        var withPreview = progress.Reports.Where(r => r.Preview is not null).ToList();
        Assert.Equal([2, 4], withPreview.Select(r => r.Step));
        Assert.All(withPreview, r =>
        {
            Assert.Equal(2, r.Preview!.Count);
            Assert.All(r.Preview, image => Assert.Equal((64, 64), (image.Width, image.Height)));
        });
        Assert.NotEqual(withPreview[0].Preview![0].Rgb, withPreview[1].Preview![0].Rgb);
        // Decoding a preview draws no noise and touches no latents: an ancestral sampler's picture is unchanged.
        for (var i = 0; i < 2; i++)
            Assert.Equal(plain.Images[i].Rgb, previewed.Images[i].Rgb);
    }

    [Theory]
    [InlineData(-1, "PreviewSteps contains -1; steps are counted from 1")]
    [InlineData(0, "PreviewSteps contains 0; steps are counted from 1")]
    [InlineData(7, "PreviewSteps contains 7; this generation runs 6 denoising evaluations, so preview steps must be between 1 and 6.")]
    public async Task Preview_steps_outside_the_run_are_refused_naming_PreviewSteps(int step, string message)
    {
        // A step that never comes would silently give no preview.
        var request = TestModels.Request() with { Scheduler = "euler", Steps = 6, PreviewSteps = [2, step] };
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => TestModels.Pipeline("tiny").GenerateAsync(request));
        Assert.Equal("PreviewSteps", e.ParamName);
        Assert.StartsWith(message, e.Message);
    }

    [Fact]
    public async Task No_previews_unless_asked()
    {
        var progress = new Collect();
        await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request(), progress);
        Assert.All(progress.Reports, r => Assert.Null(r.Preview));
    }
}
