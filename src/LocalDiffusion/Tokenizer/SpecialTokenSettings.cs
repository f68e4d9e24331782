namespace LocalDiffusion.Tokenizer;

/// <summary>A special token and the file that named it (null for the built-in default).</summary>
internal sealed record SpecialToken(string Text, string? Source);

/// <summary>What the optional config files say; defaults are SD1.x CLIP's.</summary>
internal sealed class SpecialTokenSettings
{
    /// <summary>Beginning-of-text token.</summary>
    public SpecialToken Bos { get; set; } = new("<|startoftext|>", null);

    /// <summary>End-of-text token.</summary>
    public SpecialToken Eos { get; set; } = new("<|endoftext|>", null);

    /// <summary>Null means "pad with EOS", as SD1.x does.</summary>
    public SpecialToken? Pad { get; set; }

    /// <summary>model_max_length: ids per prompt.</summary>
    public int MaxLength { get; set; } = 77;
}
