using System.Globalization;

namespace LocalDiffusion.Benchmarking;

/// <summary>Parses the compact lists users type for step counts (<c>4,8,16</c>) and seeds (<c>1-8</c>, <c>1,2,5</c>).</summary>
public static class NumberLists
{
    private const int MaxSeeds = 10_000;

    /// <summary>Comma-separated step counts from 1 to 1000, e.g. <c>4,8,16,32</c>; duplicates dropped, sorted ascending.</summary>
    /// <exception cref="FormatException">An item is not a whole number from 1 to 1000, or the list is empty.</exception>
    public static IReadOnlyList<int> ParseSteps(string text)
    {
        var steps = new SortedSet<int>();
        foreach (var item in Items(text, "Step list", "4,8,16,32"))
        {
            if (!int.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is < 1 or > 1000)
                throw new FormatException($"Step list '{text}': '{item}' is not a step count from 1 to 1000 (expected e.g. 4,8,16,32).");
            steps.Add(n);
        }
        return [.. steps];
    }

    /// <summary>Comma-separated seeds and inclusive ranges, e.g. <c>1-8</c> or <c>1,2,5</c> or <c>1-3,10</c>; duplicates dropped, order kept.</summary>
    /// <exception cref="FormatException">An item is not a non-negative whole number or range low-high with low ≤ high, or the list is empty or too long.</exception>
    public static IReadOnlyList<long> ParseSeeds(string text)
    {
        var seeds = new List<long>();
        var seen = new HashSet<long>();
        foreach (var item in Items(text, "Seed list", "1-8 or 1,2,5"))
        {
            var dash = item.IndexOf('-', 1);
            var (lowText, highText) = dash < 0 ? (item, item) : (item[..dash], item[(dash + 1)..]);
            if (!TryParseSeed(lowText, out var low) || !TryParseSeed(highText, out var high) || low > high)
                throw new FormatException($"Seed list '{text}': '{item}' is not a seed or a range low-high of seeds ≥ 0 (expected e.g. 1-8 or 1,2,5).");
            if (high - low >= MaxSeeds || seeds.Count + (high - low) >= MaxSeeds)
                throw new FormatException($"Seed list '{text}' has more than {MaxSeeds} seeds.");
            for (var s = low; s <= high; s++)
                if (seen.Add(s)) seeds.Add(s);
        }
        return seeds;
    }

    private static bool TryParseSeed(string s, out long seed) =>
        long.TryParse(s.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out seed);

    private static IEnumerable<string> Items(string text, string what, string example)
    {
        ArgumentNullException.ThrowIfNull(text);
        var items = text.Split(',', StringSplitOptions.TrimEntries);
        if (items.All(i => i.Length == 0))
            throw new FormatException($"{what} is empty (expected e.g. {example}).");
        if (items.Any(i => i.Length == 0))
            throw new FormatException($"{what} '{text}' has an empty item (expected e.g. {example}).");
        return items;
    }
}
