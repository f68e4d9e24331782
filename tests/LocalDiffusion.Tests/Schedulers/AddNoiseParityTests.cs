using System.Text.Json;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

/// <summary>
/// AddNoise and SetBeginIndex of every built-in scheduler against diffusers v0.31.0, as StableDiffusionImg2ImgPipeline
/// uses them (TestData/Schedulers/diffusers_img2img.json, written by tools/scheduler_reference/generate_img2img.py):
/// set_timesteps(n), begin index t_start·order with t_start = n − int(n·strength), add_noise at the first remaining
/// timestep, then the remaining steps; compared within <see cref="Tolerance"/> (1e-5 relative).
/// </summary>
public class AddNoiseParityTests
{
    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Schedulers", "diffusers_img2img.json"))));

    private static IEnumerable<JsonElement> Cases => Document.Value.RootElement.GetProperty("cases").EnumerateArray();

    public static TheoryData<string> CaseNames => [.. Cases.Select(c => c.GetProperty("name").GetString()!)];

    [Fact]
    public void EveryBuiltInSchedulerIsCovered()
    {
        // v0.31.0 lacks DPM++ 3M SDE and builds DPM-Solver's exponential/beta ramps wrongly: their add_noise is
        // DPMSolverMultistep's, which the dpmpp_2m cases cover. DPM++ 2S a is not in diffusers at all (k-diffusion's
        // sampler, KDiffusionParityTests); its add_noise is the sigma form x₀ + σ·ε of Euler a.
        // The flow-matching schedulers noise by interpolation (scale_noise), checked against v0.31.0 in FlowMatchParityTests.
        string[] notInV031 = ["dpmpp_3m_sde", "dpmpp_3m_sde_karras", "dpmpp_2m_exponential", "dpmpp_2m_beta", "dpmpp_2s_a", "dpmpp_2s_a_karras", "flow_euler", "flow_heun"];
        var covered = Cases.Select(c => c.GetProperty("scheduler").GetString()).ToHashSet();
        var missing = new SchedulerRegistry().All.Select(i => i.Id).Where(id => !covered.Contains(id) && !notInV031.Contains(id)).ToArray();
        Assert.True(missing.Length == 0, $"no img2img reference for: {string.Join(", ", missing)}");
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Img2ImgRunMatchesDiffusers(string name)
    {
        var testCase = Cases.Single(c => c.GetProperty("name").GetString() == name);
        var scheduler = Create(testCase);
        var steps = testCase.GetProperty("steps").GetInt32();
        var strength = testCase.GetProperty("strength").GetDouble();
        scheduler.SetTimesteps(steps);

        // The pipeline's arithmetic, as diffusers' get_timesteps does it.
        var tStart = Math.Max(steps - Math.Min((int)(steps * strength), steps), 0);
        var begin = tStart * scheduler.Order;
        Assert.Equal(testCase.GetProperty("begin_index").GetInt32(), begin);
        scheduler.SetBeginIndex(begin);
        Tolerance.AssertClose(DiffusersReference.Floats(testCase.GetProperty("timesteps")), scheduler.Timesteps.Skip(begin).ToArray(),
            $"{name} timesteps", relative: 1e-6, absolute: 1e-3);

        var x0 = Formula(k => Math.Sin(0.37 * k + 1.0));
        var noise = Formula(k => Math.Cos(0.53 * k + 0.2));
        var sample = new float[x0.Length];
        scheduler.AddNoise(x0, noise, begin, sample);
        Tolerance.AssertClose(DiffusersReference.Floats(testCase.GetProperty("noised")), sample, $"{name} add_noise");

        var seed = testCase.GetProperty("seed");
        var generator = new TorchGenerator(seed.ValueKind == JsonValueKind.Number ? seed.GetInt64() : 0);
        var trajectory = testCase.GetProperty("trajectory").EnumerateArray().ToArray();
        Assert.Equal(trajectory.Length, scheduler.Timesteps.Count - begin);
        var scaled = new float[sample.Length];
        var output = new float[sample.Length];
        var tracked = DiffusersReference.Tracked;
        for (var i = 0; i < trajectory.Length; i++)
        {
            scheduler.ScaleModelInput(sample, scaled, begin + i);
            DiffusersReference.ModelOutput(scaled, i, output);
            scheduler.Step(output, begin + i, sample, generator);
            Tolerance.AssertClose(DiffusersReference.Floats(trajectory[i]), tracked.Select(k => sample[k]).ToArray(), $"{name} step {i}");
        }
        Tolerance.AssertClose(DiffusersReference.Floats(testCase.GetProperty("final")), sample, $"{name} final");
    }

    [Fact]
    public void BeginIndexOutsideTheRunIsRefused()
    {
        var scheduler = new SchedulerRegistry().Create("dpmpp_2m", SchedulerConfig.Default);
        scheduler.SetTimesteps(10);
        var error = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => scheduler.SetBeginIndex(10));
        Assert.Contains("beginIndex", error.Message);
    }

    private static float[] Formula(Func<int, double> f) => Enumerable.Range(0, 64).Select(k => (float)f(k)).ToArray();

    // The registry entry on the case's base config; DDIM's eta and TCD's gamma, step arguments in diffusers, go to the constructor.
    private static IScheduler Create(JsonElement testCase)
    {
        var config = SchedulerConfig.Parse(testCase.GetProperty("config").GetRawText(), testCase.GetProperty("name").GetString()!);
        var id = testCase.GetProperty("scheduler").GetString()!;
        var eta = testCase.GetProperty("eta");
        if (eta.ValueKind != JsonValueKind.Number)
            return new SchedulerRegistry().Create(id, config);
        return id == "tcd" ? new TcdScheduler(config, eta.GetDouble()) : new DdimScheduler(config, eta.GetSingle());
    }
}
