using LocalDiffusion.Errors;
using LocalDiffusion.Pipeline;
using System.Text.RegularExpressions;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Errors;

/// <summary>
/// The error contract for requests: a value the model or scheduler cannot take is an <see cref="ArgumentException"/>
/// naming the field and value before any work; a NaN that appears anyway names the stage and step where it began.
/// </summary>
public class RequestErrorTests
{
    private static StableDiffusionPipeline Shapes => ShapesPipeline.Value;

    private static readonly Lazy<StableDiffusionPipeline> ShapesPipeline = new(() =>
        StableDiffusionPipeline.Load(Path.Combine(TestPaths.ModelsDir, "shapes"), new PipelineOptions { Device = "cpu" }));

    [Theory]
    [InlineData(72, 64)]
    [InlineData(8, 64)]
    [InlineData(64, 40)]
    public async Task ASizeTheUnetCannotDrawIsRefusedNamingTheMultiple(int width, int height)
    {
        // The shapes UNet halves its 8x8 latents twice (two stride-2 convolutions), so sides must be multiples of
        // 8·2² = 32 px; ONNX Runtime would otherwise fail inside a Concat node.
        Assert.Equal(32, Shapes.Info.SizeMultiple);
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() =>
            Shapes.GenerateAsync(new GenerationRequest { Prompt = "a red circle", Width = width, Height = height, Steps = 1 }));
        Assert.Equal(width % 32 != 0 ? "Width" : "Height", e.ParamName);
        Assert.Contains("multiple of 32", e.Message);
        Assert.Contains("halves the latents 2 times", e.Message);
    }

    [Theory]
    [InlineData(int.MaxValue, "e.g. 4096).")]
    [InlineData(4100, "e.g. 4096).")]
    [InlineData(8, "e.g. 32).")]
    [InlineData(72, "e.g. 64 or 96).")]
    public async Task SuggestedSizesAreOnesThatWouldBeAccepted(int width, string suggestion)
    {
        // int.MaxValue rounded up to the next multiple overflowed to a negative suggestion.
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() =>
            Shapes.GenerateAsync(new GenerationRequest { Prompt = "a red circle", Width = width, Height = 64, Steps = 1 }));
        Assert.EndsWith(suggestion, e.Message.Split(Environment.NewLine)[0]);
    }

    [Fact]
    public async Task SizeMultiplesWork()
    {
        var result = await Shapes.GenerateAsync(new GenerationRequest { Prompt = "a red circle", Width = 96, Height = 32, Steps = 1, Seed = 1 });
        Assert.Equal(96, result.Images[0].Width);
        Assert.Equal(16, TestModels.Pipeline("tiny").Info.SizeMultiple); // one down-sampling level
    }

    [Theory]
    [InlineData("dpmpp_2m")]
    [InlineData("unipc")]
    [InlineData("deis")]
    [InlineData("dpmpp_sde")]
    public async Task RepeatedSolverTimestepsAreRefusedWithTheLargestStepCountThatWorks(string scheduler)
    {
        // diffusers v0.31 with the SD 1.5 config: at 1000 steps DPMSolverMultistep/UniPC/DEIS repeat a rounded
        // timestep (leading spacing: 999 of them) and return NaN from step 1 (checked with diffusers itself).
        var pipeline = TestModels.Pipeline("tiny");
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() =>
            pipeline.GenerateAsync(TestModels.Request() with { Steps = 1000, Scheduler = scheduler }));
        Assert.Equal("Steps", e.ParamName);
        var fits = int.Parse(Regex.Match(e.Message, @"at most (\d+) steps").Groups[1].Value);
        Assert.InRange(fits, 1, 999);

        var works = SchedulerRegistry.Default.Create(scheduler, SchedulerConfig.Load(Path.Combine(TestModels.PathOf("tiny"), "scheduler", "scheduler_config.json")));
        works.SetTimesteps(fits); // the count the message offers is accepted, one more is not
        Assert.ThrowsAny<ArgumentException>(() => works.SetTimesteps(fits + 1));
    }

    [Theory]
    [InlineData("ddim")]
    [InlineData("pndm")]
    [InlineData("ddpm")]
    public async Task LeadingTimestepsPastTheTrainingRangeAreRefused(string scheduler)
    {
        // SD 1.5's steps_offset 1 with 1000 leading steps reaches timestep 1000; diffusers v0.31 raises IndexError.
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() =>
            TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { Steps = 1000, Scheduler = scheduler }));
        Assert.Equal("Steps", e.ParamName);
        Assert.Contains("reach timestep 1000", e.Message);
        Assert.Contains("at most 999 steps", e.Message);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(-1f)]
    [InlineData(3.4e38f)]
    public async Task GuidanceOutOfRangeIsRefused(float guidance)
    {
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() =>
            TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { GuidanceScale = guidance }));
        Assert.Equal("GuidanceScale", e.ParamName);
    }

    [Fact]
    public async Task NonFiniteInitialLatentsAreABadRequestNotANumericalFailure()
    {
        var noise = new TorchGenerator(1).Normal(4 * 8 * 8);
        noise[17] = float.NaN;
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() =>
            TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { InitialLatents = noise }));
        Assert.Equal("InitialLatents", e.ParamName);
    }

    [Theory]
    [InlineData(-5)]
    [InlineData(0)]
    [InlineData(100000)]
    public void ThreadCountsBeyondTheMachineAreRefusedBeforeLoading(int threads)
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() =>
            StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cpu", IntraOpThreads = threads }));
        Assert.Equal("IntraOpThreads", e.ParamName);
        Assert.Contains($"between 1 and {Environment.ProcessorCount}", e.Message);
    }

    [Fact]
    public async Task ANaNFromTheSchedulerNamesTheSchedulerAndTheStep()
    {
        // A scheduler that divides by zero at its third step: the error names that step and the scheduler, not the VAE.
        var registry = new SchedulerRegistry();
        registry.Register(new SchedulerInfo("broken", "Broken", "BrokenScheduler", Aliases: [], IsStochastic: false), _ => new BreaksAtStep(2));
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cpu", Schedulers = registry });

        var e = await Assert.ThrowsAsync<GenerationNumericsException>(() =>
            pipeline.GenerateAsync(TestModels.Request() with { Scheduler = "broken", Steps = 5 }));
        Assert.Equal(NumericsStage.Scheduler, e.Stage);
        Assert.Equal(3, e.Step);
        Assert.Contains("step 3 of 5", e.Message);
        Assert.Contains("Broken", e.Message);
    }

    private sealed class BreaksAtStep(int brokenIndex) : IScheduler
    {
        private float[] _timesteps = [];

        public IReadOnlyList<float> Timesteps => _timesteps;

        public float InitNoiseSigma => 1f;

        public void SetTimesteps(int steps) => _timesteps = Enumerable.Range(0, steps).Select(i => 999f - i * (999f / steps)).ToArray();

        public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int i) => sample.CopyTo(destination);

        public void Step(ReadOnlySpan<float> eps, int i, Span<float> x, TorchGenerator generator)
        {
            var zero = i == brokenIndex ? 0f : 1f;
            for (var k = 0; k < x.Length; k++) x[k] = (x[k] - 0.01f * eps[k]) / zero;
        }
    }
}
