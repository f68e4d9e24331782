using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Tests.Tokenizer;

/// <summary>Special tokens and length from the optional config files, on the hand-made tiny tokenizer
/// (ids in TestData/Tokenizer/tiny/README.md).</summary>
public class ClipTokenizerConfigTests
{
    [Fact]
    public void WithoutConfigPadsWithEos()
    {
        using var folder = new TempTokenizerFolder();
        var tokenizer = ClipTokenizer.Load(folder.Path);
        Assert.Equal((7, 8, 8, 77, 9), (tokenizer.BosId, tokenizer.EosId, tokenizer.PadId, tokenizer.MaxLength, tokenizer.VocabularySize));
        var prompt = tokenizer.Encode("ab ba");
        Assert.Equal([7, 6, 1, 3, 8, 8], prompt.Ids[..6]);
        Assert.Equal(77, prompt.Ids.Length);
        Assert.Equal((5, 0), (prompt.Length, prompt.TruncatedTokens));
    }

    [Fact]
    public void PadTokenStringFromTokenizerConfig()
    {
        using var folder = new TempTokenizerFolder();
        folder.Write("tokenizer_config.json", """{"pad_token": "!", "model_max_length": 77}""");
        var tokenizer = ClipTokenizer.Load(folder.Path);
        Assert.Equal(2, tokenizer.PadId);
        Assert.Equal([7, 6, 8, 2, 2], tokenizer.Encode("ab").Ids[..5]);
    }

    [Fact]
    public void SpecialTokensMapObjectsOverrideTokenizerConfig()
    {
        using var folder = new TempTokenizerFolder();
        folder.Write("tokenizer_config.json", """{"pad_token": "<|endoftext|>", "model_max_length": 77}""");
        folder.Write("special_tokens_map.json",
            """{"bos_token": {"content": "<|startoftext|>", "lstrip": false}, "pad_token": {"content": "!"}}""");
        Assert.Equal(2, ClipTokenizer.Load(folder.Path).PadId);
    }

    [Fact]
    public void ModelMaxLengthSetsTheIdCount()
    {
        using var folder = new TempTokenizerFolder();
        folder.Write("tokenizer_config.json", """{"model_max_length": 5}""");
        var prompt = ClipTokenizer.Load(folder.Path).Encode("ab ab ab ab ab");
        // 5 ids hold BOS, 3 of the 5 words, EOS.
        Assert.Equal([7, 6, 6, 6, 8], prompt.Ids);
        Assert.Equal((5, 2), (prompt.Length, prompt.TruncatedTokens));
    }

    [Fact]
    public void UnsetModelMaxLengthSentinelMeans77()
    {
        using var folder = new TempTokenizerFolder();
        // transformers writes int(1e30) when a tokenizer declares no limit.
        folder.Write("tokenizer_config.json", """{"model_max_length": 1000000000000000019884624838656}""");
        Assert.Equal(77, ClipTokenizer.Load(folder.Path).MaxLength);
    }

    [Fact]
    public void EmptyPromptIsBosEos()
    {
        using var folder = new TempTokenizerFolder();
        var prompt = ClipTokenizer.Load(folder.Path).Encode("");
        Assert.Equal([7, 8, 8], prompt.Ids[..3]);
        Assert.Equal((2, 0), (prompt.Length, prompt.TruncatedTokens));
    }
}
