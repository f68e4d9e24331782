namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// How many tokens one flow prompt came to, before any cut, noted where its rows are made (<see cref="FlowPrompt.ClipRow"/>,
/// <see cref="FlowPrompt.T5Row"/>), so the truncation warnings need no second tokenization. Null: no row of that kind was made.
/// </summary>
internal sealed class FlowPromptLengths
{
    /// <summary>The prompt's CLIP tokens (BOS and EOS not counted; an embedding counts its vectors), the most any CLIP row saw.</summary>
    public int? ClipTokens { get; private set; }

    /// <summary>The tokens a CLIP window holds between BOS and EOS (75 for CLIP's 77), noted with <see cref="ClipTokens"/>.</summary>
    public int ClipWindow { get; private set; }

    /// <summary>The prompt's T5 pieces (EOS not counted).</summary>
    public int? T5Tokens { get; private set; }

    /// <summary>Notes a CLIP row's count; SD 3's two CLIPs may differ (an embedding of other widths), and the larger is kept.</summary>
    public void NoteClip(int tokens, int window)
    {
        ClipTokens = Math.Max(ClipTokens ?? 0, tokens);
        ClipWindow = window;
    }

    /// <summary>Notes the T5 row's count.</summary>
    public void NoteT5(int tokens) => T5Tokens = tokens;
}
