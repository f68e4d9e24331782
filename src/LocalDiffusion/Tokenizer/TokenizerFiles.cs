using System.Text;
using System.Text.Json;

namespace LocalDiffusion.Tokenizer;

/// <summary>Reading and checking the files of a Hugging Face CLIP tokenizer folder.</summary>
internal static class TokenizerFiles
{
    private const string LfsPointerPrefix = "version https://git-lfs";

    /// <summary>HF writes this sentinel (int(1e30)) when a tokenizer has no length limit of its own.</summary>
    private const double UnsetMaxLength = 1e18;

    /// <summary>The path of a required file; throws when it is absent or a Git LFS pointer.</summary>
    public static string Require(string directory, string fileName, string expected)
    {
        var path = Path.Combine(directory, fileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Tokenizer file {path} is missing: expected {expected}.", path);
        RejectLfsPointer(path, expected);
        return path;
    }

    /// <summary>The path of an optional file, or null; throws when it is a Git LFS pointer.</summary>
    public static string? Optional(string directory, string fileName, string expected)
    {
        var path = Path.Combine(directory, fileName);
        if (!File.Exists(path))
            return null;
        RejectLfsPointer(path, expected);
        return path;
    }

    private static void RejectLfsPointer(string path, string expected)
    {
        Span<byte> head = stackalloc byte[LfsPointerPrefix.Length];
        using var stream = File.OpenRead(path);
        var read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (head[..read].SequenceEqual(Encoding.ASCII.GetBytes(LfsPointerPrefix)))
            throw new TokenizerFileException(path,
                $"{path} is a Git LFS pointer, not the real file: expected {expected}. Run `git lfs pull` or download the file itself.");
    }

    /// <summary>vocab.json: a JSON object of token → id.</summary>
    public static Dictionary<string, int> ReadVocabulary(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize<Dictionary<string, int>>(stream)
                ?? throw new TokenizerFileException(path, $"{path} holds JSON null: expected an object of token → id.");
        }
        catch (JsonException e)
        {
            throw new TokenizerFileException(path, $"{path} is not valid: expected a JSON object of token → integer id ({e.Message}).", e);
        }
    }

    /// <summary>merges.txt: an optional "#version" line, then one "left right" pair per line in rank order.</summary>
    public static List<string> ReadMerges(string path)
    {
        var merges = new List<string>(50_000);
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0 || (lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal)))
                continue;
            var space = line.IndexOf(' ');
            if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
                throw new TokenizerFileException(path, $"{path} line {lineNumber} is \"{line}\": expected two tokens separated by one space.");
            merges.Add(line);
        }
        if (merges.Count == 0)
            throw new TokenizerFileException(path, $"{path} has no merges: expected one \"left right\" pair per line.");
        return merges;
    }

    /// <summary>
    /// The special tokens and length limit: tokenizer_config.json first, then special_tokens_map.json over it
    /// (the order transformers applies them). Each token remembers the file that named it.
    /// </summary>
    public static SpecialTokenSettings ReadSpecialTokens(string directory)
    {
        var settings = new SpecialTokenSettings();
        if (Optional(directory, "tokenizer_config.json", "the tokenizer's JSON settings") is { } config)
            Apply(config, settings, readMaxLength: true);
        if (Optional(directory, "special_tokens_map.json", "a JSON object of special tokens") is { } map)
            Apply(map, settings, readMaxLength: false);
        return settings;
    }

    private static void Apply(string path, SpecialTokenSettings settings, bool readMaxLength)
    {
        JsonDocument document;
        try
        {
            using var stream = File.OpenRead(path);
            document = JsonDocument.Parse(stream);
        }
        catch (JsonException e)
        {
            throw new TokenizerFileException(path, $"{path} is not valid JSON: expected a JSON object ({e.Message}).", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new TokenizerFileException(path, $"{path} holds a JSON {root.ValueKind}: expected a JSON object.");
            if (TokenText(path, root, "bos_token") is { } bos)
                settings.Bos = new(bos, path);
            if (TokenText(path, root, "eos_token") is { } eos)
                settings.Eos = new(eos, path);
            if (TokenText(path, root, "pad_token") is { } pad)
                settings.Pad = new(pad, path);
            if (readMaxLength && root.TryGetProperty("model_max_length", out var max))
                settings.MaxLength = MaxLength(path, max) ?? settings.MaxLength;
        }
    }

    /// <summary>A token given as a string or as an object with "content"; null when absent or null.</summary>
    private static string? TokenText(string path, JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var value))
            return null;
        return value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String
                => content.GetString(),
            _ => throw new TokenizerFileException(path,
                $"{path}: \"{key}\" is {value.GetRawText()}: expected a token string or an object with a \"content\" string."),
        };
    }

    private static int? MaxLength(string path, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || number != Math.Floor(number))
            throw new TokenizerFileException(path, $"{path}: \"model_max_length\" is {value.GetRawText()}: expected a whole number.");
        if (number >= UnsetMaxLength)
            return null;
        if (number is < 3 or > int.MaxValue)
            throw new TokenizerFileException(path,
                $"{path}: \"model_max_length\" is {value.GetRawText()}: expected at least 3 (BOS, one token, EOS).");
        return (int)number;
    }
}
