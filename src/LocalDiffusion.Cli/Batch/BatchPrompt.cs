namespace LocalDiffusion.Cli.Batch;

/// <summary>
/// One prompt of a prompts file: its 0-based number <see cref="K"/> among the file's prompts (which names its picture
/// and picks its shard), the line it came from, and the settings the line itself gives (null: the command's flags).
/// </summary>
internal sealed record BatchPrompt(int K, int Line, string Prompt)
{
    /// <summary>The line's <c>negative_prompt</c>.</summary>
    public string? NegativePrompt { get; init; }

    /// <summary>The line's <c>seed</c>; else --seed + <see cref="K"/>.</summary>
    public long? Seed { get; init; }

    /// <summary>The line's <c>steps</c>.</summary>
    public int? Steps { get; init; }

    /// <summary>The line's <c>guidance_scale</c>.</summary>
    public float? GuidanceScale { get; init; }

    /// <summary>The line's <c>width</c>.</summary>
    public int? Width { get; init; }

    /// <summary>The line's <c>height</c>.</summary>
    public int? Height { get; init; }

    /// <summary>The line's <c>scheduler</c>.</summary>
    public string? Scheduler { get; init; }

    /// <summary>The picture's file name in the output folder: the number, zero-padded (000123.png).</summary>
    public string FileName => $"{K:D6}.png";
}
