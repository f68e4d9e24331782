using LocalDiffusion.Errors;

namespace LocalDiffusion.Evaluation;

/// <summary>The nine position names of the shapes world ("center", "left", …, "bottom right").</summary>
public static class ScenePositions
{
    /// <summary>Fractions of the side where the middle third of the 3 × 3 split begins and ends.</summary>
    public const double LowSplit = 0.39, HighSplit = 0.61;

    /// <summary>Every position name, as prompts and eval_prompts.json write them.</summary>
    public static IReadOnlyList<string> All { get; } =
        ["center", "left", "right", "top", "bottom", "top left", "top right", "bottom left", "bottom right"];

    /// <summary>The name of the cell that a point (fractions of width and height, y down) falls in.</summary>
    public static string Classify(double x, double y)
    {
        var column = x < LowSplit ? "left" : x > HighSplit ? "right" : "";
        var row = y < LowSplit ? "top" : y > HighSplit ? "bottom" : "";
        return (row, column) switch
        {
            ("", "") => "center",
            ("", _) => column,
            (_, "") => row,
            _ => $"{row} {column}",
        };
    }

    /// <summary>Checks that <paramref name="name"/> is a position name and returns it.</summary>
    /// <exception cref="ArgumentException">It is not one of <see cref="All"/>.</exception>
    public static string Validate(string name) =>
        All.Contains(name) ? name : throw new InvalidRequestException(nameof(name), null, null, _ => $"Unknown position '{name}': expected one of {string.Join(", ", All)}.");
}
