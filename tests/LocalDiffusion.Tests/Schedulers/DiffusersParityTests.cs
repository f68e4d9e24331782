using System.Text.Json;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

/// <summary>
/// Every scheduler against diffusers v0.31.0 (TestData/Schedulers/diffusers_reference.json): the schedule from
/// SetTimesteps, and a full sampling run on the generator's deterministic inputs, within <see cref="Tolerance"/>.
/// </summary>
public class DiffusersParityTests
{
    public static TheoryData<string> CaseNames => [.. DiffusersReference.Cases.Select(c => c.GetProperty("name").GetString()!)];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void ScheduleMatchesDiffusers(string name)
    {
        var testCase = DiffusersReference.Case(name);
        var scheduler = DiffusersReference.CreateScheduler(testCase);
        scheduler.SetTimesteps(testCase.GetProperty("steps").GetInt32());

        // Timesteps: integers compare exactly; fractional ones (linspace, Karras) carry float32 rounding of ln σ.
        Tolerance.AssertClose(DiffusersReference.Floats(testCase.GetProperty("timesteps")), scheduler.Timesteps, "timesteps",
            relative: 1e-6, absolute: 1e-3);
        Assert.Equal(testCase.GetProperty("init_noise_sigma").GetSingle(), scheduler.InitNoiseSigma, 1e-6f * Math.Max(1, scheduler.InitNoiseSigma));
        if (testCase.GetProperty("sigmas").ValueKind == JsonValueKind.Array)
            Tolerance.AssertClose(DiffusersReference.Floats(testCase.GetProperty("sigmas")), Assert.IsAssignableFrom<ISigmaSchedule>(scheduler).Sigmas, "sigmas");
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void SamplingRunMatchesDiffusers(string name)
    {
        var testCase = DiffusersReference.Case(name);
        DiffusersReference.AssertSamplingRunMatches(testCase, DiffusersReference.CreateScheduler(testCase), name);
    }

    [Theory]
    [InlineData("linear")]
    [InlineData("scaled_linear")]
    [InlineData("squaredcos_cap_v2")]
    [InlineData("scaled_linear_zero_snr")]
    public void BetasAndAlphasCumprodMatchTorchExactly(string name)
    {
        var reference = DiffusersReference.Root.GetProperty("alphas_cumprod").EnumerateArray()
            .Single(c => c.GetProperty("name").GetString() == name);
        // The generator read these from DDIMScheduler, which keeps the zero-SNR terminal ᾱ at exactly 0.
        var config = SchedulerConfig.Parse(reference.GetProperty("config").GetRawText(), name);
        var schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: true, finiteTerminalSigma: false);
        // Bit-exact: torch's float32 linspace and its double-accumulated cumprod are reproduced, not approximated.
        Assert.Equal(DiffusersReference.Floats(reference.GetProperty("betas")), schedule.Betas);
        Assert.Equal(DiffusersReference.Floats(reference.GetProperty("alphas_cumprod")), schedule.AlphasCumprod);
    }
}
