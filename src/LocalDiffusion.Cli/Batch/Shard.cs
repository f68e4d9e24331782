using System.Globalization;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Batch;

/// <summary>
/// One shard of a batch: shard <see cref="Index"/> of <see cref="Count"/> takes the prompts k with k % Count == Index,
/// so shards started with the same file and different indexes never make the same picture.
/// </summary>
internal readonly record struct Shard(int Index, int Count)
{
    /// <summary>The whole file (0/1).</summary>
    public static Shard All => new(0, 1);

    /// <summary>Whether prompt <paramref name="k"/> (0-based) belongs to this shard.</summary>
    public bool Takes(int k) => k % Count == Index;

    /// <summary>"i/N", as given on the command line.</summary>
    public override string ToString() => $"{Index}/{Count}";

    /// <summary>Parses "i/N" with 0 ≤ i &lt; N; anything else is an <see cref="ArgumentException"/> naming --shard.</summary>
    public static Shard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            throw new InvalidRequestException("--shard", null, null, called => $"{called} '{text}' is not i/N (e.g. 0/3: the first of 3 shards).");
        if (count < 1)
            throw new InvalidRequestException("--shard", null, null, called => $"{called} '{text}': N must be at least 1.");
        if (index >= count)
            throw new InvalidRequestException("--shard", null, null, called => $"{called} '{text}': i must be between 0 and {count - 1} (shards are numbered from 0: 0/{count} … {count - 1}/{count}).");
        return new Shard(index, count);
    }
}
