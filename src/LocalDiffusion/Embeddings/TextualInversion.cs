namespace LocalDiffusion.Embeddings;

/// <summary>
/// A textual-inversion embedding: vectors that take the place of token embeddings where its name appears in a prompt
/// (AUTOMATIC1111's rule: the trigger word is the file name without its extension).
/// </summary>
public sealed record TextualInversion
{
    /// <summary>The key of SD 1.x/2.x vectors (a file with one tensor) in <see cref="Vectors"/>.</summary>
    public const string Single = "";

    /// <summary>The keys of an SDXL file's two sets: CLIP-L (text_encoder) and OpenCLIP-G (text_encoder_2).</summary>
    public const string ClipL = "clip_l", ClipG = "clip_g";

    /// <summary>The file.</summary>
    public required string FilePath { get; init; }

    /// <summary>The trigger word: the file name without its extension.</summary>
    public required string Name { get; init; }

    /// <summary>
    /// The vectors, row-major [<see cref="VectorCount"/>, width], under <see cref="Single"/> for a one-tensor file or
    /// <see cref="ClipL"/> and <see cref="ClipG"/> for an SDXL file.
    /// </summary>
    public required IReadOnlyDictionary<string, float[]> Vectors { get; init; }

    /// <summary>The key each set of vectors was read from (for messages), by the same keys as <see cref="Vectors"/>.</summary>
    public required IReadOnlyDictionary<string, string> SourceKeys { get; init; }

    /// <summary>How many tokens the embedding stands for (its rows).</summary>
    public required int VectorCount { get; init; }

    /// <summary>The training step, when the file records it (A1111's <c>step</c>).</summary>
    public long? Step { get; init; }

    /// <summary>The hash of the checkpoint it was trained on (A1111's <c>sd_checkpoint</c>), when recorded.</summary>
    public string? SdCheckpoint { get; init; }

    /// <summary>The name of the checkpoint it was trained on (A1111's <c>sd_checkpoint_name</c>), when recorded.</summary>
    public string? SdCheckpointName { get; init; }

    /// <summary>Whether it holds an SDXL pair (clip_l and clip_g).</summary>
    public bool IsSdxlPair => Vectors.ContainsKey(ClipG);

    /// <summary>The width of the vectors under <paramref name="key"/>.</summary>
    public int Width(string key) => Vectors[key].Length / VectorCount;

    /// <summary>A1111's <c>shape</c>: the vector width (both widths added for an SDXL pair).</summary>
    public int Shape => Vectors.Keys.Sum(Width);
}
