using LocalDiffusion.Errors;

namespace LocalDiffusion.Evaluation;

/// <summary>Fractions of pictures whose detected attribute matches the expected one, per attribute.</summary>
/// <param name="Count">How many pictures were scored.</param>
/// <param name="Color">Object colour matches.</param>
/// <param name="Background">Background colour matches.</param>
/// <param name="Shape">Shape matches.</param>
/// <param name="Position">Position matches.</param>
public sealed record ShapesScore(int Count, double Color, double Background, double Shape, double Position)
{
    /// <summary>The mean of the four fractions.</summary>
    public double Mean => (Color + Background + Shape + Position) / 4;

    /// <summary>Scores detected attributes against expected ones, pair by pair.</summary>
    /// <exception cref="ArgumentException">The set is empty.</exception>
    public static ShapesScore Of(IReadOnlyList<(SceneAttributes Expected, SceneAttributes Detected)> pairs)
    {
        if (pairs.Count == 0)
            throw new InvalidRequestException(nameof(pairs), null, null, _ => "Nothing to score: the set of pictures is empty.");
        double Fraction(Func<SceneAttributes, SceneAttributes, bool> match) =>
            pairs.Count(p => match(p.Expected, p.Detected)) / (double)pairs.Count;
        return new ShapesScore(pairs.Count,
            Fraction((e, d) => e.Color == d.Color),
            Fraction((e, d) => e.Background == d.Background),
            Fraction((e, d) => e.Shape == d.Shape),
            Fraction((e, d) => e.Position == d.Position));
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"colour {Color:P0}, background {Background:P0}, shape {Shape:P0}, position {Position:P0} ({Count} pictures)";
}
