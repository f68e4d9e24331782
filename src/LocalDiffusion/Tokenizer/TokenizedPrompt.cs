namespace LocalDiffusion.Tokenizer;

/// <summary>A prompt as the text encoder takes it.</summary>
/// <param name="Ids">MaxLength ids: [BOS, bpe[:MaxLength-2], EOS, PAD...].</param>
/// <param name="Length">Real tokens including BOS and EOS.</param>
/// <param name="TruncatedTokens">How many BPE tokens were dropped to fit (0 when none).</param>
public sealed record TokenizedPrompt(int[] Ids, int Length, int TruncatedTokens);
