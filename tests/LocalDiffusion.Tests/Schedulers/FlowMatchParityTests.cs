using System.Text.Json;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

/// <summary>
/// The flow-matching schedulers (SD3, FLUX.1) against diffusers v0.31.0's FlowMatchEulerDiscreteScheduler and
/// FlowMatchHeunDiscreteScheduler: TestData/Schedulers/diffusers_flow.json, written by tools/scheduler_reference/generate_flow.py
/// with torch 1.13 (versions recorded in the file). Inputs are formulas both sides compute: x_k = float32(sin(0.37k + 1)),
/// v_k = 0.6·x_k + float32(0.3·cos(0.23k + 0.5i)) at evaluation i over a [1,16,2,2] latent; img2img cases noise
/// x0 = float32(sin(0.37k + 1)) with noise_k = float32(cos(0.53k + 0.2)). Both sides compute in float32 in the same order,
/// so sigmas and timesteps must match to the float32 bit (the shifts are float64, as numpy computes them, rounded once) and
/// the samples within <see cref="Tolerance"/> (1e-5 relative, 1e-6 absolute), which in practice they meet exactly.
/// </summary>
public class FlowMatchParityTests
{
    private static readonly Lazy<JsonElement> Root = new(() =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Schedulers", "diffusers_flow.json"))).RootElement);

    private static Dictionary<string, JsonElement> Cases =>
        Root.Value.GetProperty("cases").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!);

    public static TheoryData<string> CaseNames => [.. Cases.Keys];

    [Fact]
    public void ReferenceRecordsItsVersion() => Assert.Equal("0.31.0", Root.Value.GetProperty("diffusers_version").GetString());

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void ScheduleMatchesDiffusers(string name)
    {
        var testCase = Cases[name];
        var scheduler = Create(testCase);
        Assert.Equal(DiffusersReference.Floats(testCase.GetProperty("timesteps")), scheduler.Timesteps);
        Assert.Equal(DiffusersReference.Floats(testCase.GetProperty("sigmas")), ((ISigmaSchedule)scheduler).Sigmas);
        Assert.Equal(1f, scheduler.InitNoiseSigma);
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void SamplingRunMatchesDiffusers(string name)
    {
        var testCase = Cases[name];
        var scheduler = Create(testCase);
        var x = Formula(k => Math.Sin(0.37 * k + 1.0));
        var begin = 0;
        if (testCase.TryGetProperty("begin_index", out var beginIndex))
        {
            begin = beginIndex.GetInt32();
            scheduler.SetBeginIndex(begin);
            var noised = new float[x.Length];
            scheduler.AddNoise(x, Formula(k => Math.Cos(0.53 * k + 0.2)), begin, noised);
            Tolerance.AssertClose(DiffusersReference.Floats(testCase.GetProperty("noised")), noised, $"{name} scale_noise");
            x = noised;
        }

        var tracked = Root.Value.GetProperty("tracked").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var trajectory = testCase.GetProperty("trajectory").EnumerateArray().ToArray();
        Assert.Equal(trajectory.Length, scheduler.Timesteps.Count - begin);
        var scaled = new float[x.Length];
        var velocity = new float[x.Length];
        var generator = new TorchGenerator(0);
        for (var i = begin; i < scheduler.Timesteps.Count; i++)
        {
            scheduler.ScaleModelInput(x, scaled, i);
            DiffusersReference.ModelOutput(scaled, i, velocity);
            scheduler.Step(velocity, i, x, generator);
            Tolerance.AssertClose(DiffusersReference.Floats(trajectory[i - begin]), tracked.Select(k => x[k]).ToArray(), $"{name} step {i}");
        }
        Tolerance.AssertClose(DiffusersReference.Floats(testCase.GetProperty("final")), x, $"{name} final sample");
    }

    [Fact]
    public void CalculateShiftMatchesDiffusers()
    {
        // diffusers' calculate_shift, executed alone by the generator; float64 on both sides, same operation order.
        foreach (var item in Root.Value.GetProperty("calculate_shift").EnumerateArray())
        {
            var mu = FlowMatchShift.CalculateShift(item.GetProperty("image_seq_len").GetInt32(), item.GetProperty("base_seq_len").GetInt32(),
                item.GetProperty("max_seq_len").GetInt32(), item.GetProperty("base_shift").GetDouble(), item.GetProperty("max_shift").GetDouble());
            Assert.Equal(item.GetProperty("mu").GetDouble(), mu);
        }
        Assert.Equal(0.5, FlowMatchShift.CalculateShift(256), 12);
        Assert.Equal(1.15, FlowMatchShift.CalculateShift(4096), 12);
    }

    /// <summary>The scheduler of a case, set up as the generator set diffusers' up (μ, FLUX's ramp, or plain steps).</summary>
    private static IScheduler Create(JsonElement testCase)
    {
        var config = SchedulerConfig.Parse(testCase.GetProperty("config").GetRawText(), testCase.GetProperty("name").GetString()!);
        var scheduler = new SchedulerRegistry().Create(testCase.GetProperty("scheduler").GetString()!, config);
        var steps = testCase.GetProperty("steps").GetInt32();
        double? mu = testCase.GetProperty("mu").ValueKind == JsonValueKind.Number ? testCase.GetProperty("mu").GetDouble() : null;
        if (testCase.GetProperty("flux_sigmas").GetBoolean())
            Assert.IsType<FlowMatchEulerDiscreteScheduler>(scheduler).SetSigmas(FlowMatchEulerDiscreteScheduler.FluxSigmas(steps), mu);
        else
            Assert.IsAssignableFrom<IFlowMatchScheduler>(scheduler).SetTimesteps(steps, mu);
        return scheduler;
    }

    private static float[] Formula(Func<int, double> f) => Enumerable.Range(0, 64).Select(k => (float)f(k)).ToArray();
}
