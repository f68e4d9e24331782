using System.Text.Json;

namespace LocalDiffusion.Benchmarking;

/// <summary>
/// Reads benchmark prompts from a file: plain text (one prompt per line; blank lines and lines starting with #
/// skipped) or JSON — an array, or an object with a <c>cases</c> or <c>prompts</c> array, whose items are prompt
/// strings or objects with a <c>prompt</c> and an optional <c>seed</c> (the whole object is kept as the case's
/// <see cref="BenchmarkCase.Details"/>, for an adherence scorer).
/// </summary>
public static class BenchmarkCaseFile
{
    /// <summary>
    /// The cases in <paramref name="path"/>: items with their own seed keep it unless <paramref name="overrideFileSeeds"/>;
    /// the others are run with every seed in <paramref name="seeds"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file holds no prompt, or a JSON item is malformed; the message names the file and item.</exception>
    public static IReadOnlyList<BenchmarkCase> Load(string path, IReadOnlyList<long> seeds, bool overrideFileSeeds)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(seeds);
        if (!File.Exists(path)) throw new FileNotFoundException($"Prompts file {path} does not exist.", path);
        var text = File.ReadAllText(path);
        var cases = new List<BenchmarkCase>();
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            foreach (var (prompt, seed, details) in ReadJson(path, text))
                cases.AddRange(seed is { } s && !overrideFileSeeds
                    ? [new BenchmarkCase(prompt, s) { Details = details }]
                    : seeds.Select(x => new BenchmarkCase(prompt, x) { Details = details }));
        }
        else
        {
            var prompts = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'));
            cases.AddRange(BenchmarkCase.Cross(prompts, seeds));
        }
        if (cases.Count == 0) throw new InvalidDataException($"Prompts file {path} holds no prompt.");
        return cases;
    }

    private static List<(string Prompt, long? Seed, JsonElement? Details)> ReadJson(string path, string text)
    {
        JsonElement root;
        try
        {
            root = JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Prompts file {path} is not valid JSON: {e.Message}", e);
        }
        var items = root.ValueKind switch
        {
            JsonValueKind.Array => root,
            JsonValueKind.Object when root.TryGetProperty("cases", out var c) && c.ValueKind == JsonValueKind.Array => c,
            JsonValueKind.Object when root.TryGetProperty("prompts", out var p) && p.ValueKind == JsonValueKind.Array => p,
            _ => throw new InvalidDataException($"Prompts file {path}: expected an array of prompts, or an object with a \"cases\" or \"prompts\" array."),
        };
        var entries = new List<(string, long?, JsonElement?)>();
        var index = 0;
        foreach (var item in items.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.String)
                entries.Add((item.GetString()!, null, null));
            else if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("prompt", out var prompt) && prompt.ValueKind == JsonValueKind.String)
            {
                long? seed = null;
                if (item.TryGetProperty("seed", out var s))
                    seed = s.TryGetInt64(out var v) && v >= 0 ? v
                        : throw new InvalidDataException($"Prompts file {path}, item {index}: \"seed\" must be a whole number ≥ 0, not {s.GetRawText()}.");
                entries.Add((prompt.GetString()!, seed, item));
            }
            else
                throw new InvalidDataException($"Prompts file {path}, item {index}: expected a string or an object with a \"prompt\" string, not {item.GetRawText()}.");
            index++;
        }
        return entries;
    }
}
