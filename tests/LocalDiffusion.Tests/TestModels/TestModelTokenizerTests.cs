using Microsoft.ML.Tokenizers;

namespace LocalDiffusion.Tests.TestModels;

/// <summary>The test models' tokenizer folder (written by tools/clip_bpe.py) loads in Microsoft.ML.Tokenizers.</summary>
public class TestModelTokenizerTests
{
    // Expected ids: tools/clip_bpe.py's ClipBpe (a reimplementation of openai simple_tokenizer.py's bpe(), checked
    // against openai's output on ../shared/clip) on models/test/tiny/tokenizer; exact.
    public static TheoryData<string, int[]> Captions() => new()
    {
        { "a red fox in the rain", [320, 645, 953, 516, 536, 876] },
        { "an astronaut riding a horse", [575, 902, 81, 72, 623, 320, 576, 81, 82, 324] },
        { "a watercolor lighthouse by the sea at night", [320, 720, 979, 795, 536, 883, 603, 641] },
    };

    [Theory]
    [MemberData(nameof(Captions))]
    public void ByteLevelBpeWithTheEndOfWordSuffixGivesClipsIds(string caption, int[] expected)
    {
        var folder = Path.Combine(TestModelCatalog.Variant("tiny").Folder, "tokenizer");
        var tokenizer = BpeTokenizer.Create(new BpeOptions(Path.Combine(folder, "vocab.json"), Path.Combine(folder, "merges.txt"))
        {
            ByteLevel = true,
            EndOfWordSuffix = "</w>",
        });
        // Lowercase ASCII words without punctuation: CLIP's pre-split is a split on spaces.
        var ids = caption.Split(' ').SelectMany(word => tokenizer.EncodeToIds(word)).ToArray();
        Assert.Equal(expected, ids);
    }
}
