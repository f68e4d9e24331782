using LocalDiffusion.Pipeline;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

/// <summary>
/// The README's plug-in example, compiled and run: a user's own sampler (here deterministic DDIM, Song et al. 2021,
/// eq. 12 with η = 0), registered by name and used for a real generation.
/// </summary>
public class PluginSchedulerExampleTests
{
    /// <summary>x_{t−1} = √ᾱ_{t−1}·x̂₀ + √(1−ᾱ_{t−1})·ε, with x̂₀ = (x_t − √(1−ᾱ_t)·ε)/√ᾱ_t.</summary>
    private sealed class MyDdim(SchedulerConfig config) : IScheduler
    {
        private readonly NoiseSchedule _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: false);
        private float[] _timesteps = [];

        public IReadOnlyList<float> Timesteps => _timesteps;

        public float InitNoiseSigma => 1f;

        public void SetTimesteps(int inferenceSteps) => _timesteps = TimestepSpacings
            .Leading(_schedule.TrainTimesteps, inferenceSteps, config.StepsOffset ?? 0).Select(t => (float)t).ToArray();

        public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

        public void Step(ReadOnlySpan<float> eps, int stepIndex, Span<float> x, TorchGenerator generator)
        {
            var alpha = _schedule.AlphasCumprod[(int)_timesteps[stepIndex]];
            var alphaPrev = stepIndex + 1 < _timesteps.Length ? _schedule.AlphasCumprod[(int)_timesteps[stepIndex + 1]] : _schedule.AlphasCumprod[0];
            for (var i = 0; i < x.Length; i++)
            {
                var x0 = (x[i] - MathF.Sqrt(1 - alpha) * eps[i]) / MathF.Sqrt(alpha);
                x[i] = MathF.Sqrt(alphaPrev) * x0 + MathF.Sqrt(1 - alphaPrev) * eps[i];
            }
        }
    }

    [Fact]
    public async Task ARegisteredSamplerIsUsableByNameAndAgreesWithTheBuiltInDdim()
    {
        var registry = new SchedulerRegistry();
        registry.Register(new SchedulerInfo("my_ddim", "My DDIM", "MyDdimScheduler", Aliases: [], IsStochastic: false),
            config => new MyDdim(config));
        using var pipeline = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cpu", Schedulers = registry });

        var mine = await pipeline.GenerateAsync(TestModels.Request() with { Scheduler = "My DDIM", Steps = 10 });

        Assert.Equal("My DDIM", mine.Scheduler);
        Assert.Equal(10, mine.UnetEvaluations);
        // The built-in DDIM (clip_sample off, set_alpha_to_one off as in SD 1.5's config) walks the same path.
        var reference = new MyDdim(SchedulerConfig.Default);
        var builtIn = new DdimScheduler(SchedulerConfig.Default with
        {
            BetaSchedule = BetaSchedule.Linear, ClipSample = false, SetAlphaToOne = false, TimestepSpacing = TimestepSpacing.Leading,
        });
        reference.SetTimesteps(10);
        builtIn.SetTimesteps(10);
        Assert.Equal(builtIn.Timesteps, reference.Timesteps);
        float[] a = [0.5f, -1f, 2f], b = [0.5f, -1f, 2f];
        var generator = new TorchGenerator(0);
        for (var i = 0; i < 10; i++)
        {
            float[] eps = [0.1f * i, -0.2f, 0.3f];
            reference.Step(eps, i, a, generator);
            builtIn.Step(eps, i, b, generator);
        }
        for (var i = 0; i < a.Length; i++) Assert.Equal(b[i], a[i], 1e-4f);
    }
}
