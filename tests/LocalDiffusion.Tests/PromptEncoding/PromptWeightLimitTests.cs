using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Tests.Cli;

namespace LocalDiffusion.Tests.PromptEncoding;

/// <summary>
/// Issue 20, case 3: weights that cannot give a finite conditioning, and nesting no prompt needs, are refused as a bad
/// (negative) prompt before any UNet work, naming the token or weight, on SD 1.x, SDXL and LCM alike; the UNet is never
/// blamed for them.
/// </summary>
public class PromptWeightLimitTests
{
    private static readonly string HugeWeight = "1" + new string('0', 400);

    public static TheoryData<string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var model in new[] { "tiny", "tiny-sdxl", "tiny-lcm" })
        {
            // model, prompt, what the message must quote
            data.Add(model, $"(a:{HugeWeight})", "not a finite number");
            data.Add(model, "(a:340000000000000000000000000000000000000)", "\"a\"");
            data.Add(model, new string('(', 10_000) + "a", $"more than {PromptAttention.MaxNestingDepth} levels");
            // Each factor is a finite float32 (A1111's weights are digits and dots: no exponent), their product is not.
            var e30 = "1" + new string('0', 30);
            data.Add(model, $"((a:{e30}):{e30})", "multiply out");
        }
        return data;
    }

    private static async Task<ArgumentException> Refused(string model, GenerationRequest request)
    {
        var steps = 0;
        var progress = new SynchronousProgress(p => { if (p.Phase == GenerationPhase.Denoising && p.Step > 0) steps++; });
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => TestModels.Pipeline(model).GenerateAsync(request with { Steps = 2 }, progress));
        Assert.Equal(0, steps); // no UNet step ran
        Assert.DoesNotContain("UNet", e.Message);
        return e;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task APromptWhoseWeightsCannotBeFiniteIsRefusedNamingIt(string model, string prompt, string expected)
    {
        var e = await Refused(model, TestModels.Request(prompt));
        Assert.Equal("Prompt", e.ParamName);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task ANegativePromptWhoseWeightsCannotBeFiniteIsRefusedNamingIt(string model, string negative, string expected)
    {
        // LCM has no classifier-free guidance: its negative prompt is parsed (and refused when unreadable) but never
        // encoded, so a weight that only overflows once encoded does it no harm there.
        if (model == "tiny-lcm" && expected == "\"a\"") return;
        var e = await Refused(model, TestModels.Request() with { NegativePrompt = negative, GuidanceScale = 7.5f });
        Assert.Equal("NegativePrompt", e.ParamName);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void NestingUpToTheLimitIsAccepted()
    {
        var runs = PromptAttention.Parse(new string('(', PromptAttention.MaxNestingDepth) + "a");
        Assert.Equal(Math.Pow(1.1, PromptAttention.MaxNestingDepth), runs.Single().Weight, 6);
        Assert.Throws<FormatException>(() => PromptAttention.Parse(new string('[', PromptAttention.MaxNestingDepth + 1) + "a"));
    }

    [Fact]
    public async Task TheCliRefusesItAsTheFlagExitOne()
    {
        using var dir = new TempDirectory();
        var (code, _, error) = await CliRunner.Run("generate", "--model", TestModels.PathOf("tiny"), "--device", "cpu", "--steps", "2",
            "-p", "(a:340000000000000000000000000000000000000)", "--out", Path.Combine(dir.Path, "o.png"));
        Assert.Equal(LocalDiffusion.Cli.ExitCodes.InvalidInput, code);
        Assert.Contains("--prompt", error);
        Assert.Contains("\"a\"", error);
        Assert.DoesNotContain("UNet", error);
        Assert.False(File.Exists(Path.Combine(dir.Path, "o.png")));
    }

    private sealed class SynchronousProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
