using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Tests.Tokenizer;

/// <summary>Every case of ../shared/clip/tokenizer_cases.json (openai simple_tokenizer.py + ftfy 6.3.1), exactly.</summary>
public class ClipTokenizerReferenceTests
{
    /// <summary>Sizes and ids stated in ../shared/clip/README.md (49408 entries, BOS 49406, EOS 49407).</summary>
    [Fact]
    public void LoadsTheSd1Vocabulary()
    {
        var tokenizer = SharedClipData.Tokenizer();
        Assert.Equal(49408, tokenizer.VocabularySize);
        Assert.Equal(77, tokenizer.MaxLength);
        Assert.Equal(49406, tokenizer.BosId);
        Assert.Equal(49407, tokenizer.EosId);
        Assert.Equal(49407, tokenizer.PadId);
    }

    [Fact]
    public void ReproducesEveryReferenceCase() => AssertCasesReproduced(SharedClipData.Cases().Where(c => c.Note is null).ToList());

    /// <summary>The cases marked optional (ftfy's mojibake repair, "cafÃ©" → "café").</summary>
    [Fact]
    public void ReproducesTheMojibakeCase()
    {
        var optional = SharedClipData.Cases().Where(c => c.Note is not null).ToList();
        if (optional.Count == 0)
            Assert.Skip("tokenizer_cases.json has no optional (noted) case.");
        AssertCasesReproduced(optional);
    }

    /// <summary>A freshly loaded tokenizer (cold BPE cache) used from 8 threads gives the reference ids.</summary>
    [Fact]
    public void EncodeIsThreadSafe()
    {
        var cases = SharedClipData.Cases();
        var tokenizer = ClipTokenizer.Load(SharedClipData.Folder());
        Parallel.For(0, cases.Count * 20, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var c = cases[(i * 7) % cases.Count];
            Assert.Equal(c.Ids, tokenizer.Encode(c.Text).Ids);
        });
    }

    private static void AssertCasesReproduced(List<TokenizerCase> cases)
    {
        var tokenizer = SharedClipData.Tokenizer();
        Assert.NotEmpty(cases);
        var failures = new List<string>();
        foreach (var c in cases)
        {
            var prompt = tokenizer.Encode(c.Text);
            if (!prompt.Ids.AsSpan().SequenceEqual(c.Ids) || prompt.Length != c.Length)
                failures.Add($"{Escape(c.Text)}\n  expected ({c.Length}) {string.Join(' ', c.Ids.Take(c.Length))}\n  actual   ({prompt.Length}) {string.Join(' ', prompt.Ids.Take(prompt.Length))}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases differ:\n" + string.Join('\n', failures));
    }

    private static string Escape(string text) =>
        string.Concat(text.EnumerateRunes().Select(r => r.Value is >= 0x20 and < 0x7F ? r.ToString() : $"\\u{r.Value:X4}"));
}
