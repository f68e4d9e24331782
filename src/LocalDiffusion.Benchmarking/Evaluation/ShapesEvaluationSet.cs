using System.Text.Json;

namespace LocalDiffusion.Evaluation;

/// <summary>One evaluation case: a prompt, its seed, and what the picture must show.</summary>
/// <param name="Prompt">The prompt (empty negative prompt).</param>
/// <param name="Seed">The generation seed.</param>
/// <param name="Expected">The attributes the picture must show.</param>
public sealed record ShapesEvaluationCase(string Prompt, long Seed, SceneAttributes Expected);

/// <summary>Loads the shapes model's evaluation set (models/shapes/eval_prompts.json, tools/shapes/make_eval_prompts.py).</summary>
public static class ShapesEvaluationSet
{
    /// <summary>Reads the cases of an eval_prompts.json file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">A case lacks a field or names an unknown colour, shape or position.</exception>
    public static IReadOnlyList<ShapesEvaluationCase> Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Shapes evaluation set not found: {path}", path);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        if (!doc.RootElement.TryGetProperty("cases", out var cases) || cases.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{path}: expected an object with a 'cases' array.");
        var result = new List<ShapesEvaluationCase>();
        var index = 0;
        foreach (var item in cases.EnumerateArray())
        {
            try
            {
                var expected = new SceneAttributes(
                    NamedColor.Parse(Text(item, "color")).Name,
                    NamedColor.Parse(Text(item, "background")).Name,
                    ShapeKinds.Parse(Text(item, "shape")),
                    ScenePositions.Validate(Text(item, "position")));
                if (!item.TryGetProperty("seed", out var seed) || !seed.TryGetInt64(out var seedValue))
                    throw new InvalidDataException("'seed' must be an integer");
                result.Add(new ShapesEvaluationCase(Text(item, "prompt"), seedValue, expected));
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or InvalidOperationException)
            {
                throw new InvalidDataException($"{path}: case {index}: {e.Message}", e);
            }
            index++;
        }
        return result;
    }

    private static string Text(JsonElement item, string name) =>
        item.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new InvalidDataException($"'{name}' must be a string");
}
