using System.Text.Json;

namespace LocalDiffusion.Benchmarking;

/// <summary>One prompt and seed that every scheduler × step count of a benchmark is run on.</summary>
/// <param name="Prompt">The text prompt.</param>
/// <param name="Seed">The generator seed (the same initial noise for every scheduler).</param>
public sealed record BenchmarkCase(string Prompt, long Seed)
{
    /// <summary>The case's entry in a JSON prompts file (e.g. the expected colour and shape an adherence scorer checks); null when it came from plain text.</summary>
    public JsonElement? Details { get; init; }

    /// <summary>Every prompt with every seed, prompt-major.</summary>
    public static IReadOnlyList<BenchmarkCase> Cross(IEnumerable<string> prompts, IEnumerable<long> seeds)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(seeds);
        var seedList = seeds.ToList();
        return prompts.SelectMany(p => seedList.Select(s => new BenchmarkCase(p, s))).ToList();
    }
}
