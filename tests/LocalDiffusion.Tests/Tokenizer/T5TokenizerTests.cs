using System.Text.Json;
using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Tests.Tokenizer;

/// <summary>
/// The T5 tokenizer against python3-sentencepiece on the tiny T5 model (TestData/Tokenizer/t5_tiny_ids.json, written by
/// tools/t5_tokenizer_reference.py: ids as T5TokenizerFast pads and truncates them for SD3/FLUX). Exact ids.
/// </summary>
public class T5TokenizerTests
{
    private static readonly string Model = Path.Combine(TestPaths.ModelsDir, "test", "tiny-sd3", "tokenizer_3");

    private static IEnumerable<JsonElement> Cases =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Tokenizer", "t5_tiny_ids.json"))).RootElement.GetProperty("cases").EnumerateArray();

    public static TheoryData<int> CaseIndices => [.. Enumerable.Range(0, Cases.Count())];

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void MatchesSentencePiece(int index)
    {
        var testCase = Cases.ElementAt(index);
        var tokenizer = T5Tokenizer.Load(Model);
        var text = testCase.GetProperty("text").GetString()!;
        Assert.Equal(testCase.GetProperty("raw").EnumerateArray().Select(e => e.GetInt32()), tokenizer.EncodePieces(text));
        Assert.Equal(testCase.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()),
            tokenizer.Encode(text, testCase.GetProperty("max_length").GetInt32()));
    }

    [Fact]
    public void FluxFoldersHoldTheSameModel()
    {
        var ids = T5Tokenizer.Load(Path.Combine(TestPaths.ModelsDir, "test", "tiny-flux-dev", "tokenizer_2")).Encode("a red cat", 8);
        Assert.Equal(T5Tokenizer.Load(Model).Encode("a red cat", 8), ids);
        Assert.Equal([T5Tokenizer.EndOfSequenceId, 0, 0], T5Tokenizer.Load(Model).Encode("", 3));
    }

    [Fact]
    public void RefusesMissingAndLfsPointerFiles()
    {
        Assert.Throws<FileNotFoundException>(() => T5Tokenizer.Load(Path.Combine(Path.GetTempPath(), $"none-{Guid.NewGuid():N}")));
        var pointer = TestPaths.WriteTempFile("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n"u8.ToArray(), ".model");
        try
        {
            Assert.Throws<TokenizerFileException>(() => T5Tokenizer.Load(pointer));
        }
        finally
        {
            File.Delete(pointer);
        }
    }
}
