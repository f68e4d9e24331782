using Microsoft.ML.Tokenizers;

namespace LocalDiffusion.Tokenizer;

/// <summary>
/// The CLIP tokenizer of Stable Diffusion's text encoders: Microsoft.ML.Tokenizers' byte-level BPE with CLIP's
/// <see cref="ClipNormalizer"/> and <see cref="ClipPreTokenizer"/>, plus BOS, truncation, EOS and padding to
/// <see cref="MaxLength"/>. Immutable after <see cref="Load"/>; <see cref="Encode"/> is thread-safe.
/// </summary>
public sealed class ClipTokenizer
{
    private readonly BpeTokenizer _bpe;

    private ClipTokenizer(BpeTokenizer bpe, int maxLength, int bosId, int eosId, int padId, int vocabularySize, int? commaId)
    {
        CommaId = commaId;
        _bpe = bpe;
        MaxLength = maxLength;
        BosId = bosId;
        EosId = eosId;
        PadId = padId;
        VocabularySize = vocabularySize;
    }

    /// <summary>Ids per prompt, BOS and EOS included (model_max_length, 77 for every SD text encoder).</summary>
    public int MaxLength { get; }

    /// <summary>Beginning-of-text id (49406 in CLIP).</summary>
    public int BosId { get; }

    /// <summary>End-of-text id (49407 in CLIP).</summary>
    public int EosId { get; }

    /// <summary>Padding id: EOS for SD1.x, 0 ("!") for SD2/OpenCLIP and SDXL's second tokenizer.</summary>
    public int PadId { get; }

    /// <summary>The id of "," as a word (<c>,&lt;/w&gt;</c>), where long prompts prefer to break chunks; null if absent.</summary>
    public int? CommaId { get; }

    /// <summary>The BPE ids of <paramref name="text"/>, without BOS, EOS, truncation or padding.</summary>
    public IReadOnlyList<int> EncodeTokens(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _bpe.EncodeToIds(text);
    }

    /// <summary>Entries in vocab.json (49408 in CLIP).</summary>
    public int VocabularySize { get; }

    /// <summary>
    /// Loads vocab.json and merges.txt from a model's tokenizer folder, and the special tokens and
    /// model_max_length from tokenizer_config.json / special_tokens_map.json when present.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">vocab.json or merges.txt is missing.</exception>
    /// <exception cref="TokenizerFileException">A file is a Git LFS pointer, malformed, or names a special token
    /// that the vocabulary lacks.</exception>
    public static ClipTokenizer Load(string tokenizerDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenizerDirectory);
        if (!Directory.Exists(tokenizerDirectory))
            throw new DirectoryNotFoundException(
                $"Tokenizer folder {tokenizerDirectory} does not exist: expected a folder with vocab.json and merges.txt.");

        var vocabPath = TokenizerFiles.Require(tokenizerDirectory, "vocab.json", "a JSON object of token → id");
        var mergesPath = TokenizerFiles.Require(tokenizerDirectory, "merges.txt", "BPE merges, one \"left right\" pair per line");
        var vocabulary = TokenizerFiles.ReadVocabulary(vocabPath);
        var merges = TokenizerFiles.ReadMerges(mergesPath);
        var settings = TokenizerFiles.ReadSpecialTokens(tokenizerDirectory);

        var bosId = IdOf(settings.Bos, vocabulary, vocabPath, "bos_token");
        var eosId = IdOf(settings.Eos, vocabulary, vocabPath, "eos_token");
        var padId = settings.Pad is null ? eosId : IdOf(settings.Pad, vocabulary, vocabPath, "pad_token");

        var options = new BpeOptions(vocabulary)
        {
            Merges = merges,
            ByteLevel = true,
            EndOfWordSuffix = "</w>",
            // CLIP's BPE cache maps these two words straight to their ids; every other word goes through merges.
            SpecialTokens = new Dictionary<string, int> { [settings.Bos.Text] = bosId, [settings.Eos.Text] = eosId },
            Normalizer = ClipNormalizer.Instance,
            PreTokenizer = ClipPreTokenizer.Instance,
        };
        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(options);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or KeyNotFoundException)
        {
            throw new TokenizerFileException(mergesPath,
                $"{mergesPath} does not fit {vocabPath}: expected every merge to join tokens of the vocabulary ({e.Message}).", e);
        }
        return new ClipTokenizer(bpe, settings.MaxLength, bosId, eosId, padId, vocabulary.Count,
            vocabulary.TryGetValue(",</w>", out var comma) ? comma : null);
    }

    /// <summary>
    /// Tokenizes a prompt to exactly <see cref="MaxLength"/> ids: BOS, at most MaxLength − 2 BPE tokens, EOS,
    /// then padding.
    /// </summary>
    public TokenizedPrompt Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var bpe = _bpe.EncodeToIds(text);
        var room = MaxLength - 2;
        var kept = Math.Min(bpe.Count, room);
        var ids = new int[MaxLength];
        ids[0] = BosId;
        for (var i = 0; i < kept; i++)
            ids[i + 1] = bpe[i];
        ids[kept + 1] = EosId;
        ids.AsSpan(kept + 2).Fill(PadId);
        return new TokenizedPrompt(ids, kept + 2, bpe.Count - kept);
    }

    private static int IdOf(SpecialToken token, Dictionary<string, int> vocabulary, string vocabPath, string key) =>
        vocabulary.TryGetValue(token.Text, out var id)
            ? id
            : throw new TokenizerFileException(token.Source ?? vocabPath, token.Source is null
                ? $"{vocabPath} lacks the default {key} \"{token.Text}\": expected it in the vocabulary (or a tokenizer_config.json naming another)."
                : $"{token.Source} names {key} \"{token.Text}\", which {vocabPath} lacks: expected a token of the vocabulary.");
}
