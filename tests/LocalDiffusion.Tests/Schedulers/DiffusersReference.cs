using System.Text.Json;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

/// <summary>
/// TestData/Schedulers/diffusers_reference.json, written by tools/scheduler_reference/generate.py from diffusers
/// v0.31.0 with torch 1.13 (versions recorded in the file), and the inputs that script fed to each run.
/// </summary>
internal static class DiffusersReference
{
    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Schedulers", "diffusers_reference.json"))));

    public static JsonElement Root => Document.Value.RootElement;

    public static IEnumerable<JsonElement> Cases => Root.GetProperty("cases").EnumerateArray();

    public static JsonElement Case(string name) => Cases.Single(c => c.GetProperty("name").GetString() == name);

    public static int[] Tracked => Root.GetProperty("tracked").EnumerateArray().Select(e => e.GetInt32()).ToArray();

    public static float[] Floats(JsonElement array) => array.EnumerateArray().Select(e => e.GetSingle()).ToArray();

    /// <summary>The initial latents of every run: float32(sin(0.37·k + 1)) · init_noise_sigma, k = 0..63.</summary>
    public static float[] InitialSample(float initNoiseSigma) =>
        Enumerable.Range(0, 64).Select(k => (float)Math.Sin(0.37 * k + 1.0) * initNoiseSigma).ToArray();

    /// <summary>The model output at evaluation <paramref name="step"/>: 0.6·scaled + float32(0.3·cos(0.23·k + 0.5·step)).</summary>
    public static void ModelOutput(ReadOnlySpan<float> scaled, int step, Span<float> destination)
    {
        for (var k = 0; k < destination.Length; k++)
            destination[k] = 0.6f * scaled[k] + (float)(0.3 * Math.Cos(0.23 * k + 0.5 * step));
    }

    /// <summary>
    /// The generator's sampling loop on its inputs (after SetTimesteps): ScaleModelInput, <see cref="ModelOutput"/>, Step;
    /// <paramref name="afterStep"/> sees the sample after each step. Returns the final sample.
    /// </summary>
    public static float[] Sample(IScheduler scheduler, TorchGenerator generator, Action<int, float[]>? afterStep = null)
    {
        var sample = InitialSample(scheduler.InitNoiseSigma);
        var scaled = new float[sample.Length];
        var modelOutput = new float[sample.Length];
        for (var i = 0; i < scheduler.Timesteps.Count; i++)
        {
            scheduler.ScaleModelInput(sample, scaled, i);
            ModelOutput(scaled, i, modelOutput);
            scheduler.Step(modelOutput, i, sample, generator);
            afterStep?.Invoke(i, sample);
        }
        return sample;
    }

    /// <summary>
    /// Runs <paramref name="scheduler"/> on the case's inputs with a generator seeded like the case's torch generator,
    /// checking the tracked elements after every step and the whole final sample within <see cref="Tolerance"/>.
    /// </summary>
    public static void AssertSamplingRunMatches(JsonElement testCase, IScheduler scheduler, string name,
        double relative = Tolerance.Relative, double absolute = Tolerance.Absolute)
    {
        scheduler.SetTimesteps(testCase.GetProperty("steps").GetInt32());
        var seed = testCase.GetProperty("seed");
        var generator = new TorchGenerator(seed.ValueKind == JsonValueKind.Number ? seed.GetInt64() : 0);

        var tracked = Tracked;
        var trajectory = testCase.GetProperty("trajectory").EnumerateArray().ToArray();
        Assert.Equal(trajectory.Length, scheduler.Timesteps.Count);
        var sample = Sample(scheduler, generator, (i, current) =>
            Tolerance.AssertClose(Floats(trajectory[i]), tracked.Select(k => current[k]).ToArray(), $"{name} step {i}", relative, absolute));
        Tolerance.AssertClose(Floats(testCase.GetProperty("final")), sample, $"{name} final sample", relative, absolute);
    }

    /// <summary>The scheduler of a case, built the way the generator built it (from_config of the case's config; DDIM's eta as a step option).</summary>
    public static IScheduler CreateScheduler(JsonElement testCase)
    {
        var config = SchedulerConfig.Parse(testCase.GetProperty("config").GetRawText(), testCase.GetProperty("name").GetString()!);
        var id = testCase.GetProperty("scheduler").GetString()!;
        return testCase.GetProperty("eta").ValueKind == JsonValueKind.Number
            ? new DdimScheduler(config, testCase.GetProperty("eta").GetSingle())
            : new SchedulerRegistry().Create(id, config);
    }
}
