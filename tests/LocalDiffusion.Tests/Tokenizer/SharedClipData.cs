using System.Text.Json;
using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Tests.Tokenizer;

/// <summary>
/// ../shared/clip: the SD1.x CLIP vocabulary and the reference cases, produced by openai's simple_tokenizer.py
/// with ftfy 6.3.1 (see ../shared/clip/README.md). Loaded once for the whole test run.
/// </summary>
internal static class SharedClipData
{
    private static readonly Lazy<ClipTokenizer> Loaded = new(() => ClipTokenizer.Load(Folder()));

    /// <summary>The folder holding vocab.json and merges.txt, or a skipped test.</summary>
    public static string Folder() => Path.GetDirectoryName(TestPaths.RequireShared("clip", "vocab.json"))!;

    /// <summary>The tokenizer loaded from <see cref="Folder"/> (skips when the shared data is absent).</summary>
    public static ClipTokenizer Tokenizer()
    {
        TestPaths.RequireShared("clip", "vocab.json");
        TestPaths.RequireShared("clip", "merges.txt");
        return Loaded.Value;
    }

    /// <summary>The cases of tokenizer_cases.json (skips when absent).</summary>
    public static IReadOnlyList<TokenizerCase> Cases()
    {
        using var stream = File.OpenRead(TestPaths.RequireShared("clip", "tokenizer_cases.json"));
        return JsonSerializer.Deserialize<List<TokenizerCase>>(stream, new JsonSerializerOptions { PropertyNameCaseInsensitive = true })
            ?? throw new InvalidDataException("tokenizer_cases.json holds null");
    }
}

/// <summary>One reference case: the prompt, its 77 ids and its length; Note marks an optional case.</summary>
internal sealed record TokenizerCase(string Text, int[] Ids, int Length, string? Note);
