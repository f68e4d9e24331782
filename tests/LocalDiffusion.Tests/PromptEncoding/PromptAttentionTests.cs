using LocalDiffusion.PromptEncoding;

namespace LocalDiffusion.Tests.PromptEncoding;

/// <summary>
/// The attention parser against the examples in the docstring of <c>parse_prompt_attention</c> in AUTOMATIC1111's
/// modules/prompt_parser.py (stable-diffusion-webui v1.x), whose expected lists are copied here as they are written
/// there (double weights: 1.1·1.1·1.3 = 1.5730000000000004 in Python).
/// </summary>
public class PromptAttentionTests
{
    private static (string, double)[] Parse(string text) => PromptAttention.Parse(text).Select(r => (r.Text, r.Weight)).ToArray();

    [Fact]
    public void A1111DocstringExamples()
    {
        Assert.Equal([("normal text", 1.0)], Parse("normal text"));
        Assert.Equal([("an ", 1.0), ("important", 1.1), (" word", 1.0)], Parse("an (important) word"));
        Assert.Equal([("unbalanced", 1.1)], Parse("(unbalanced"));
        Assert.Equal([("(literal]", 1.0)], Parse(@"\(literal\]"));
        Assert.Equal([("unnecessaryparens", 1.1)], Parse("(unnecessary)(parens)"));
        Assert.Equal(
            [("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
             (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1)],
            Parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")); // from the same docstring
    }

    [Fact]
    public void SquareBracketsDivideAndBreakSplits()
    {
        // [x] is ×(1/1.1) = 0.9090909090909091; [[x]] applies it twice.
        Assert.Equal([("a ", 1.0), ("b", 1 / 1.1), (" c", 1.0)], Parse("a [b] c"));
        Assert.Equal([("b", 1 / 1.1 * (1 / 1.1))], Parse("[[b]]"));
        var parts = PromptAttention.Parse("a cat BREAK a dog");
        Assert.Equal(["a cat", "BREAK", "a dog"], parts.Select(p => p.Text));
        Assert.True(parts[1].IsBreak);
        // "break" in lower case, or inside a word, is text.
        Assert.Equal([("a break BREAKFAST", 1.0)], Parse("a break BREAKFAST"));
    }

    [Fact]
    public void AColonWithoutAnOpenBracketIsText()
    {
        Assert.Equal([("ratio 16:9", 1.0)], Parse("ratio 16:9"));
        Assert.Equal([("word:1.3)", 1.0)], Parse("word:1.3)"));
    }

    [Fact]
    public void AnUnreadableWeightIsRefusedNamingTheProperty()
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => PromptEncoder.Validate("a (cat:1.2.3)", "Prompt"));
        Assert.Equal("Prompt", e.ParamName);
        Assert.Contains("1.2.3", e.Message);
    }
}
