using LocalDiffusion.Benchmarking;

namespace LocalDiffusion.Tests.Benchmarking;

/// <summary>Step lists, seed lists, references and prompts files as users write them.</summary>
public class BenchmarkArgumentTests
{
    [Theory]
    [InlineData("4,8,16,32", new[] { 4, 8, 16, 32 })]
    [InlineData("32, 4,8,4", new[] { 4, 8, 32 })]
    [InlineData("1000", new[] { 1000 })]
    public void StepListsParse(string text, int[] expected) => Assert.Equal(expected, NumberLists.ParseSteps(text));

    [Theory]
    [InlineData("4,x", "'x'")]
    [InlineData("4,,8", "empty item")]
    [InlineData("0", "'0'")]
    [InlineData("1001", "'1001'")]
    [InlineData("-4", "'-4'")]
    [InlineData("", "empty")]
    [InlineData("4.5", "'4.5'")]
    public void MalformedStepListsSayWhatIsWrong(string text, string mentions)
    {
        var e = Assert.Throws<FormatException>(() => NumberLists.ParseSteps(text));
        Assert.Contains(mentions, e.Message);
        Assert.Contains("4,8,16,32", e.Message); // shows the expected form
    }

    [Theory]
    [InlineData("1-8", new long[] { 1, 2, 3, 4, 5, 6, 7, 8 })]
    [InlineData("1,2,5", new long[] { 1, 2, 5 })]
    [InlineData("7,1-3,2", new long[] { 7, 1, 2, 3 })]
    [InlineData("0", new long[] { 0 })]
    public void SeedListsParse(string text, long[] expected) => Assert.Equal(expected, NumberLists.ParseSeeds(text));

    [Theory]
    [InlineData("8-1")]
    [InlineData("1-")]
    [InlineData("a-b")]
    [InlineData("-1")]
    [InlineData("1-100000")]
    public void MalformedSeedListsAreRejected(string text) =>
        Assert.Throws<FormatException>(() => NumberLists.ParseSeeds(text));

    [Theory]
    [InlineData("dpmpp_2m@100", "dpmpp_2m", 100)]
    [InlineData("DPM++ 2M Karras@50", "DPM++ 2M Karras", 50)]
    public void ReferencesParse(string text, string scheduler, int steps) =>
        Assert.Equal(new ReferenceSolution(scheduler, steps), ReferenceSolution.Parse(text));

    [Theory]
    [InlineData("ddim")]
    [InlineData("ddim@")]
    [InlineData("@50")]
    [InlineData("ddim@fifty")]
    [InlineData("ddim@0")]
    public void MalformedReferencesShowTheExpectedForm(string text)
    {
        var e = Assert.Throws<FormatException>(() => ReferenceSolution.Parse(text));
        Assert.Contains("NAME@STEPS", e.Message);
        Assert.Contains(text, e.Message);
    }

    [Fact]
    public void TextPromptsFilesGiveEveryPromptWithEverySeed()
    {
        using var dir = new TempDirectory();
        var file = Path.Combine(dir.Path, "prompts.txt");
        File.WriteAllText(file, "# shapes\na red circle\r\n\n  a blue square  \n");

        var cases = BenchmarkCaseFile.Load(file, [1, 2], overrideFileSeeds: false);

        Assert.Equal([("a red circle", 1L), ("a red circle", 2L), ("a blue square", 1L), ("a blue square", 2L)], cases.Select(c => (c.Prompt, c.Seed)));
    }

    [Fact]
    public void JsonPromptsFilesKeepTheirSeedsAndDetailsUnlessSeedsAreGiven()
    {
        using var dir = new TempDirectory();
        var file = Path.Combine(dir.Path, "eval.json");
        File.WriteAllText(file, """{"cases": [{"prompt": "a red circle", "seed": 7, "color": "red"}, "a green star"]}""");

        var own = BenchmarkCaseFile.Load(file, [1, 2], overrideFileSeeds: false);
        Assert.Equal([("a red circle", 7L), ("a green star", 1L), ("a green star", 2L)], own.Select(c => (c.Prompt, c.Seed)));
        Assert.Equal("red", own[0].Details!.Value.GetProperty("color").GetString());

        var given = BenchmarkCaseFile.Load(file, [3], overrideFileSeeds: true);
        Assert.Equal([("a red circle", 3L), ("a green star", 3L)], given.Select(c => (c.Prompt, c.Seed)));
    }

    [Theory]
    [InlineData("""[{"text": "x"}]""", "item 0")]
    [InlineData("""["ok", {"prompt": "x", "seed": -1}]""", "item 1")]
    [InlineData("""{"other": []}""", "\"cases\"")]
    [InlineData("""[1,""", "not valid JSON")]
    [InlineData("""[]""", "no prompt")]
    public void BadJsonPromptsFilesNameTheFileAndItem(string json, string mentions)
    {
        using var dir = new TempDirectory();
        var file = Path.Combine(dir.Path, "bad.json");
        File.WriteAllText(file, json);
        var e = Assert.Throws<InvalidDataException>(() => BenchmarkCaseFile.Load(file, [1], overrideFileSeeds: false));
        Assert.Contains(file, e.Message);
        Assert.Contains(mentions, e.Message);
    }

    [Fact]
    public void AMissingPromptsFileIsNamed()
    {
        var e = Assert.Throws<FileNotFoundException>(() => BenchmarkCaseFile.Load("/no/such/prompts.txt", [1], false));
        Assert.Contains("/no/such/prompts.txt", e.Message);
    }

    [Fact]
    public void CasesCrossPromptsWithSeedsPromptMajor() =>
        Assert.Equal([new BenchmarkCase("a", 1), new BenchmarkCase("a", 2), new BenchmarkCase("b", 1), new BenchmarkCase("b", 2)],
            BenchmarkCase.Cross(["a", "b"], [1, 2]));
}
