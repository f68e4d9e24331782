using System.Text.Json;
using LocalDiffusion.PromptEncoding;

namespace LocalDiffusion.Tests.PromptEncoding;

/// <summary>
/// The attention parser against AUTOMATIC1111's own <c>parse_prompt_attention</c>: TestData/PromptEncoding/a1111_attention.json
/// holds what that function (modules/prompt_parser.py, imported at run time by tools/prompt_reference/a1111_attention.py)
/// returned for each prompt. Texts and weights must be equal exactly: both sides multiply the same doubles in the same
/// order, so A1111's 1.1·1.1 = 1.2100000000000002 is the engine's too. A prompt A1111 cannot read (float() raising
/// ValueError) must be a FormatException here, which the pipeline turns into an ArgumentException naming the property.
/// </summary>
public class PromptAttentionA1111ReferenceTests
{
    private static readonly Lazy<JsonDocument> Reference = new(() =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("PromptEncoding", "a1111_attention.json"))));

    private static JsonElement Case(string prompt) =>
        Reference.Value.RootElement.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("prompt").GetString() == prompt);

    public static TheoryData<string> Prompts =>
        [.. Reference.Value.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("prompt").GetString()!)];

    [Theory]
    [MemberData(nameof(Prompts))]
    public void ParsesAsA1111(string prompt)
    {
        var c = Case(prompt);
        if (c.TryGetProperty("error", out var error))
        {
            Assert.Equal("ValueError", error.GetString());
            Assert.Throws<FormatException>(() => PromptAttention.Parse(prompt));
            return;
        }
        var expected = c.GetProperty("parsed").EnumerateArray().Select(p => (p[0].GetString()!, p[1].GetDouble())).ToArray();
        var actual = PromptAttention.Parse(prompt).Select(r => (r.Text, r.Weight)).ToArray();
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void TheReferenceCoversBreakAndRefusals()
    {
        // A guard against a regenerated file that lost its interesting cases.
        var cases = Reference.Value.RootElement.GetProperty("cases").EnumerateArray().ToArray();
        Assert.True(cases.Length >= 40);
        Assert.Contains(cases, c => c.TryGetProperty("error", out _));
        Assert.Contains(cases, c => c.TryGetProperty("parsed", out var p) && p.EnumerateArray().Any(r => r[0].GetString() == "BREAK" && r[1].GetDouble() == -1));
    }
}
