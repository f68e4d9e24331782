namespace LocalDiffusion.Tests.Tokenizer;

/// <summary>Truncation to MaxLength − 2 BPE tokens on the real SD1.x vocabulary.</summary>
public class ClipTokenizerTruncationTests
{
    // "cat" is the single token 2368: tokenizer_cases.json's "a photo of a cat" ends with it (openai simple_tokenizer.py).
    private const int Cat = 2368;

    [Theory]
    [InlineData(74, 0)]
    [InlineData(75, 0)]
    [InlineData(76, 1)]
    [InlineData(100, 25)]
    [InlineData(300, 225)]
    public void DropsExactlyTheTokensBeyond75(int copies, int dropped)
    {
        var tokenizer = SharedClipData.Tokenizer();
        Assert.Equal([tokenizer.BosId, Cat, tokenizer.EosId], tokenizer.Encode("cat").Ids[..3]);

        var prompt = tokenizer.Encode(string.Join(' ', Enumerable.Repeat("cat", copies)));

        var kept = copies - dropped;
        Assert.Equal(dropped, prompt.TruncatedTokens);
        Assert.Equal(kept + 2, prompt.Length);
        Assert.Equal(77, prompt.Ids.Length);
        Assert.Equal(tokenizer.BosId, prompt.Ids[0]);
        Assert.All(prompt.Ids[1..(kept + 1)], id => Assert.Equal(Cat, id));
        Assert.Equal(tokenizer.EosId, prompt.Ids[kept + 1]);
        Assert.All(prompt.Ids[(kept + 2)..], id => Assert.Equal(tokenizer.PadId, id));
    }
}
