using LocalDiffusion.Evaluation;
using LocalDiffusion.Imaging;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Benchmarking;

/// <summary>
/// Prompt adherence for the shapes model: the fraction of the expected object colour, background colour, shape and
/// position that <see cref="ShapesAnalyser"/> finds in the picture (0, ¼, ½, ¾ or 1 per picture).
/// </summary>
public sealed class ShapesAdherenceScorer : IAdherenceScorer
{
    private readonly Dictionary<string, SceneAttributes> _expected = [];

    /// <summary>Scores pictures of the prompts in <paramref name="cases"/> (what a picture must show depends on its prompt only).</summary>
    public ShapesAdherenceScorer(IEnumerable<ShapesEvaluationCase> cases)
    {
        ArgumentNullException.ThrowIfNull(cases);
        foreach (var c in cases) _expected.TryAdd(c.Prompt, c.Expected);
    }

    /// <summary>A scorer for the cases of a shapes evaluation set (e.g. models/shapes/eval_prompts.json).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">It is not a shapes evaluation set.</exception>
    public static ShapesAdherenceScorer Load(string evalPromptsPath) => new(ShapesEvaluationSet.Load(evalPromptsPath));

    /// <inheritdoc />
    public string Name => "shapes";

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The case's prompt is not in the evaluation set.</exception>
    public double Score(BenchmarkCase testCase, GeneratedImage image)
    {
        ArgumentNullException.ThrowIfNull(testCase);
        ArgumentNullException.ThrowIfNull(image);
        if (!_expected.TryGetValue(testCase.Prompt, out var expected))
            throw new InvalidRequestException(nameof(testCase), null, null, _ => $"The prompt \"{testCase.Prompt}\" is not in the shapes evaluation set, so its picture cannot be scored.");
        var detected = ShapesAnalyser.Analyse(image.Rgb, image.Width, image.Height);
        return ShapesScore.Of([(expected, detected)]).Mean;
    }
}
