namespace LocalDiffusion.Tests.Cli;

/// <summary>
/// <c>generate --max-sequence-length N</c> on tiny-flux-schnell: the picture is the library's with
/// <see cref="GenerationRequest.MaxSequenceLength"/> N (whose T5 length FlowFamilyParityTests hold to diffusers), and a
/// value past the limit is the request's mistake (exit 1) naming the flag.
/// </summary>
public sealed class MaxSequenceLengthCliTests
{
    private const string Prompt = "a photo of a red cat sitting on a wooden chair beside a window at dusk";

    private static string[] Args(string output, params string[] more) =>
        ["generate", "--model", TestModels.PathOf("tiny-flux-schnell"), "--prompt", Prompt, "--steps", "2", "--seed", "5", "--device", "cpu",
         "--width", "64", "--height", "48", "--out", output, .. more];

    [Fact]
    public async Task The_flag_cuts_the_t5_prompt_as_the_library_does()
    {
        using var dir = new TempDirectory();
        var output = Path.Combine(dir.Path, "short.png");
        var (code, _, error) = await CliRunner.Run(Args(output, "--max-sequence-length", "4"));
        Assert.True(code == 0, error);
        var expected = await TestModels.Pipeline("tiny-flux-schnell").GenerateAsync(
            new GenerationRequest { Prompt = Prompt, Width = 64, Height = 48, Seed = 5, Steps = 2, MaxSequenceLength = 4 },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(expected.Images[0].Rgb, LocalDiffusion.Imaging.GeneratedImage.LoadPng(output).Rgb);

        var full = Path.Combine(dir.Path, "full.png");
        (code, _, error) = await CliRunner.Run(Args(full));
        Assert.True(code == 0, error);
        Assert.NotEqual(LocalDiffusion.Imaging.GeneratedImage.LoadPng(full).Rgb, LocalDiffusion.Imaging.GeneratedImage.LoadPng(output).Rgb);
    }

    [Fact]
    public async Task A_length_past_the_limit_is_refused_naming_the_flag()
    {
        using var dir = new TempDirectory();
        var (code, _, error) = await CliRunner.Run(Args(Path.Combine(dir.Path, "x.png"), "--max-sequence-length", "600"));
        Assert.Equal(1, code);
        Assert.Contains("--max-sequence-length is 600", error);
        Assert.False(File.Exists(Path.Combine(dir.Path, "x.png")));
    }
}
