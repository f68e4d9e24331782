using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Tests.Tokenizer;

/// <summary>Each bad tokenizer folder gets its own exception naming the file and what was expected.</summary>
public class ClipTokenizerLoadErrorTests
{
    private const string LfsPointer =
        "version https://git-lfs.github.com/spec/v1\noid sha256:4a5e2b8f1c0d3e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f\nsize 961143\n";

    [Fact]
    public void MissingFolder()
    {
        using var folder = new TempTokenizerFolder();
        var missing = Path.Combine(folder.Path, "nope");
        var e = Assert.Throws<DirectoryNotFoundException>(() => ClipTokenizer.Load(missing));
        Assert.Contains(missing, e.Message);
        Assert.Contains("vocab.json", e.Message);
    }

    [Theory]
    [InlineData("vocab.json")]
    [InlineData("merges.txt")]
    public void MissingFile(string name)
    {
        using var folder = new TempTokenizerFolder();
        File.Delete(folder.FileIn(name));
        var e = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.Load(folder.Path));
        Assert.Equal(folder.FileIn(name), e.FileName);
        Assert.Contains(folder.FileIn(name), e.Message);
        Assert.Contains("expected", e.Message);
    }

    [Theory]
    [InlineData("vocab.json")]
    [InlineData("merges.txt")]
    [InlineData("tokenizer_config.json")]
    public void GitLfsPointer(string name)
    {
        using var folder = new TempTokenizerFolder();
        var path = folder.Write(name, LfsPointer);
        var e = LoadFailsOn(folder, path);
        Assert.Contains("Git LFS pointer", e.Message);
    }

    [Theory]
    [InlineData("vocab.json", """{"a": 0, "b": """)]
    [InlineData("vocab.json", """["a", "b"]""")]
    [InlineData("vocab.json", """{"a": "zero"}""")]
    [InlineData("tokenizer_config.json", """{"pad_token": "!",}""")]
    [InlineData("special_tokens_map.json", """{"pad_token": 5}""")]
    [InlineData("tokenizer_config.json", """{"model_max_length": "77"}""")]
    [InlineData("tokenizer_config.json", """{"model_max_length": 2}""")]
    public void MalformedJson(string name, string content)
    {
        using var folder = new TempTokenizerFolder();
        var path = folder.Write(name, content);
        var e = LoadFailsOn(folder, path);
        Assert.Contains("expected", e.Message);
    }

    [Fact]
    public void MalformedMergeLine()
    {
        using var folder = new TempTokenizerFolder();
        var path = folder.Write("merges.txt", "#version: 0.2\na b</w>\nab\n");
        Assert.Contains("line 3", LoadFailsOn(folder, path).Message);
    }

    [Fact]
    public void MergeOfTokensAbsentFromVocabulary()
    {
        using var folder = new TempTokenizerFolder();
        var path = folder.Write("merges.txt", "#version: 0.2\na b</w>\nb a</w>\n");
        var e = LoadFailsOn(folder, path);
        Assert.Contains(folder.FileIn("vocab.json"), e.Message);
        Assert.Contains("ba</w>", e.Message);
    }

    [Theory]
    [InlineData("tokenizer_config.json", "pad_token", "<pad>")]
    [InlineData("special_tokens_map.json", "bos_token", "<s>")]
    [InlineData("special_tokens_map.json", "eos_token", "</s>")]
    public void SpecialTokenAbsentFromVocabulary(string name, string key, string token)
    {
        using var folder = new TempTokenizerFolder();
        var path = folder.Write(name, $$"""{"{{key}}": "{{token}}"}""");
        var e = LoadFailsOn(folder, path);
        Assert.Contains(key, e.Message);
        Assert.Contains($"\"{token}\"", e.Message);
        Assert.Contains(folder.FileIn("vocab.json"), e.Message);
    }

    [Fact]
    public void DefaultSpecialTokenAbsentFromVocabulary()
    {
        using var folder = new TempTokenizerFolder();
        var vocab = folder.Write("vocab.json", """{"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4, "<|endoftext|>": 5}""");
        Assert.Contains("<|startoftext|>", LoadFailsOn(folder, vocab).Message);
    }

    /// <summary>Loading fails with a TokenizerFileException that names <paramref name="path"/>.</summary>
    private static TokenizerFileException LoadFailsOn(TempTokenizerFolder folder, string path)
    {
        var e = Assert.Throws<TokenizerFileException>(() => ClipTokenizer.Load(folder.Path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains(path, e.Message);
        return e;
    }
}
