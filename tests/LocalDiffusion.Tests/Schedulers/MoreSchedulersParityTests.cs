using System.Text.Json;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

/// <summary>
/// The samplers added after the first six, against diffusers itself: TestData/Schedulers/diffusers_reference_more.json
/// (diffusers v0.31.0) and diffusers_reference_0_32.json (v0.32.0, for DPM++ 3M SDE and DPM-Solver's exponential/beta
/// sigmas, which v0.31.0 lacks or builds ascending), both written by tools/scheduler_reference/generate_more.py with
/// torch 1.13 (versions recorded in the files). Same inputs and run loop as <see cref="DiffusersParityTests"/>, and the
/// same <see cref="Tolerance"/>: 1e-5 relative with a 1e-6 absolute floor, float32.
/// </summary>
public class MoreSchedulersParityTests
{
    private static readonly string[] Files = ["diffusers_reference_more.json", "diffusers_reference_0_32.json"];

    private static readonly Lazy<Dictionary<string, JsonElement>> AllCases = new(() =>
        Files.SelectMany(file => JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Schedulers", file)))
                .RootElement.GetProperty("cases").EnumerateArray())
            .ToDictionary(c => c.GetProperty("name").GetString()!));

    public static TheoryData<string> CaseNames => [.. AllCases.Value.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void ScheduleMatchesDiffusers(string name)
    {
        var testCase = AllCases.Value[name];
        var scheduler = CreateScheduler(testCase);
        scheduler.SetTimesteps(testCase.GetProperty("steps").GetInt32());

        // Fractional timesteps (placed back from σ by interpolating ln σ) carry float32 rounding of the logarithm.
        Tolerance.AssertClose(DiffusersReference.Floats(testCase.GetProperty("timesteps")), scheduler.Timesteps, "timesteps",
            relative: 1e-6, absolute: 1e-3);
        Assert.Equal(testCase.GetProperty("init_noise_sigma").GetSingle(), scheduler.InitNoiseSigma, 1e-6f * Math.Max(1, scheduler.InitNoiseSigma));
        if (testCase.GetProperty("sigmas").ValueKind == JsonValueKind.Array)
        {
            // diffusers' KDPM2 classes keep a second trailing 0 that no evaluation reads; the contract lists one per evaluation plus the final.
            var expected = DiffusersReference.Floats(testCase.GetProperty("sigmas")).Take(scheduler.Timesteps.Count + 1).ToArray();
            Tolerance.AssertClose(expected, Assert.IsAssignableFrom<ISigmaSchedule>(scheduler).Sigmas, "sigmas");
        }
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void SamplingRunMatchesDiffusers(string name)
    {
        var testCase = AllCases.Value[name];
        // Third-order DEIS coefficients are differences of nearly equal float32 terms built from logarithms, so a one-ulp
        // difference between numpy's float32 log and .NET's grows to about 2e-5 of the sample's scale (~1): those cases get
        // 5e-5 relative with a 1e-5 absolute floor.
        var deisOrder3 = name.StartsWith("deis/order3", StringComparison.Ordinal);
        DiffusersReference.AssertSamplingRunMatches(testCase, CreateScheduler(testCase), name,
            deisOrder3 ? 5e-5 : Tolerance.Relative, deisOrder3 ? 1e-5 : Tolerance.Absolute);
    }

    [Fact]
    public void ReferenceFilesRecordTheirVersions()
    {
        var versions = Files.Select(file => JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Schedulers", file)))
            .RootElement.GetProperty("diffusers_version").GetString()!).ToArray();
        Assert.Equal(["0.31.0", "0.32.0"], versions);
    }

    /// <summary>The case's registry entry built from its config; TCD's eta, a step argument in diffusers, is a constructor argument here.</summary>
    private static IScheduler CreateScheduler(JsonElement testCase)
    {
        var config = SchedulerConfig.Parse(testCase.GetProperty("config").GetRawText(), testCase.GetProperty("name").GetString()!);
        var id = testCase.GetProperty("scheduler").GetString()!;
        var eta = testCase.GetProperty("eta");
        return eta.ValueKind == JsonValueKind.Number
            ? new TcdScheduler(config, eta.GetDouble())
            : new SchedulerRegistry().Create(id, config);
    }
}
