using Microsoft.ML.Tokenizers;

namespace LocalDiffusion.Tokenizer;

/// <summary>
/// The T5 tokenizer of SD3's <c>tokenizer_3/</c> and FLUX.1's <c>tokenizer_2/</c>: a SentencePiece (unigram) model in
/// <c>spiece.model</c>, read with Microsoft.ML.Tokenizers' <see cref="SentencePieceTokenizer"/>. <see cref="Encode"/> gives what
/// Hugging Face's T5TokenizerFast gives with <c>padding="max_length", max_length=L, truncation=True</c> as diffusers calls it:
/// the pieces' ids cut to L − 1, then EOS <c>&lt;/s&gt;</c> (id 1), then <c>&lt;pad&gt;</c> (id 0) up to L. T5 has no BOS.
/// </summary>
/// <remarks>
/// Checked against python3-sentencepiece on a tiny model (tools/t5_tokenizer_reference.py). Text is NFKC-normalised first, as
/// the model's nmt_nfkc rule does (fullwidth letters, ligatures). The SD 3 and FLUX.1 conditioners use it (weighted prompts: one call per run of text).
/// </remarks>
public sealed class T5Tokenizer
{
    /// <summary>T5's end-of-sequence id (<c>&lt;/s&gt;</c>).</summary>
    public const int EndOfSequenceId = 1;

    /// <summary>T5's padding id (<c>&lt;pad&gt;</c>).</summary>
    public const int PadId = 0;

    private readonly SentencePieceTokenizer _tokenizer;

    private readonly int _unknownId;

    private T5Tokenizer(SentencePieceTokenizer tokenizer)
    {
        _tokenizer = tokenizer;
        _unknownId = tokenizer.UnknownId;
    }

    /// <summary>Reads <c>spiece.model</c> from a tokenizer folder (or the path of the model file itself).</summary>
    /// <exception cref="FileNotFoundException">There is no spiece.model.</exception>
    /// <exception cref="TokenizerFileException">The file is a Git LFS pointer or not a SentencePiece model T5 can use.</exception>
    public static T5Tokenizer Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var file = Directory.Exists(path) ? Path.Combine(path, "spiece.model") : path;
        if (!File.Exists(file))
            throw new FileNotFoundException($"T5 tokenizer: {file} not found (a T5 tokenizer folder holds spiece.model).", file);
        var bytes = File.ReadAllBytes(file);
        if (bytes.AsSpan().StartsWith("version https://git-lfs"u8))
            throw new TokenizerFileException(file, $"{file} is a Git LFS pointer, not the SentencePiece model: fetch the LFS object.");
        SentencePieceTokenizer tokenizer;
        try
        {
            using var stream = new MemoryStream(WithBeginOfSentenceId(bytes, UnknownIdPlaceholder), writable: false);
            tokenizer = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new TokenizerFileException(file, $"{file} is not a SentencePiece model this tokenizer can read ({e.Message}).", e);
        }
        if (tokenizer.EndOfSentenceId != EndOfSequenceId)
            throw new TokenizerFileException(file, $"{file}: expected T5's </s> at id {EndOfSequenceId}, found id {tokenizer.EndOfSentenceId}.");
        return new T5Tokenizer(tokenizer);
    }

    // T5's models have no BOS (trainer_spec.bos_id = -1), which Microsoft.ML.Tokenizers 2.0.1's unigram model indexes the
    // piece table with and fails on. BOS is never emitted here (addBeginningOfSentence false), so a placeholder id in range
    // is written in its place: <unk>'s, which T5's models keep at 2.
    private const int UnknownIdPlaceholder = 2;

    /// <summary>
    /// The model bytes with <c>trainer_spec.bos_id</c> (ModelProto field 2, TrainerSpec field 41) set to <paramref name="id"/>:
    /// a varint field appended to the trainer_spec message, which protobuf readers take over any earlier value.
    /// </summary>
    private static byte[] WithBeginOfSentenceId(byte[] model, int id)
    {
        var output = new List<byte>(model.Length + 8);
        var position = 0;
        while (position < model.Length)
        {
            var start = position;
            var tag = ReadVarint(model, ref position);
            var wire = (int)(tag & 7);
            if (tag >> 3 == 2 && wire == 2)
            {
                var length = (int)ReadVarint(model, ref position);
                var patch = new List<byte>(model.AsSpan(position, length).ToArray());
                WriteVarint(patch, (41 << 3) | 0);
                WriteVarint(patch, (ulong)id);
                WriteVarint(output, tag);
                WriteVarint(output, (ulong)patch.Count);
                output.AddRange(patch);
                position += length;
                continue;
            }
            switch (wire)
            {
                case 0: ReadVarint(model, ref position); break;
                case 1: position += 8; break;
                case 2:
                    var skip = (int)ReadVarint(model, ref position);
                    position += skip;
                    break;
                case 5: position += 4; break;
                default: throw new InvalidDataException($"unexpected protobuf wire type {wire}");
            }
            output.AddRange(model.AsSpan(start, position - start).ToArray());
        }
        return [.. output];
    }

    private static ulong ReadVarint(byte[] data, ref int position)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            if (position >= data.Length || shift > 63)
                throw new InvalidDataException("truncated protobuf varint");
            var b = data[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
                return value;
        }
    }

    private static void WriteVarint(List<byte> output, ulong value)
    {
        while (value >= 0x80)
        {
            output.Add((byte)(value | 0x80));
            value >>= 7;
        }
        output.Add((byte)value);
    }

    /// <summary>The ids of <paramref name="text"/>'s pieces alone (no EOS, no padding).</summary>
    public IReadOnlyList<int> EncodePieces(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = _tokenizer.EncodeToIds(text.Normalize(System.Text.NormalizationForm.FormKC), addBeginningOfSentence: false, addEndOfSentence: false);
        // SentencePiece's unigram encoder merges a run of unknown characters into one <unk>; Microsoft.ML.Tokenizers 2.0.1
        // emits one per character.
        var merged = new List<int>(ids.Count);
        foreach (var id in ids)
            if (!(id == _unknownId && merged.Count > 0 && merged[^1] == _unknownId))
                merged.Add(id);
        return merged;
    }

    /// <summary>
    /// <paramref name="maxLength"/> ids: the pieces cut to <paramref name="maxLength"/> − 1, EOS, then padding (SD3: 256 by
    /// default; FLUX.1-schnell 256, FLUX.1-dev 512).
    /// </summary>
    public int[] Encode(string text, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 1);
        var pieces = EncodePieces(text);
        var ids = new int[maxLength]; // zero-filled: PadId
        var count = Math.Min(pieces.Count, maxLength - 1);
        for (var i = 0; i < count; i++)
            ids[i] = pieces[i];
        ids[count] = EndOfSequenceId;
        return ids;
    }
}
