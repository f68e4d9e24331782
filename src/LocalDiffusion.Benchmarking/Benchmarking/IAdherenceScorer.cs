using LocalDiffusion.Imaging;

namespace LocalDiffusion.Benchmarking;

/// <summary>
/// Scores how well a picture matches its case's prompt (e.g. the shapes model's analyser checking colour, shape and
/// position); a benchmark given one reports the mean score per scheduler and step count.
/// </summary>
public interface IAdherenceScorer
{
    /// <summary>A short name for the score's column, e.g. <c>shapes</c>.</summary>
    string Name { get; }

    /// <summary>The score of <paramref name="image"/> for <paramref name="testCase"/>, from 0 (nothing matches) to 1 (all matches).</summary>
    double Score(BenchmarkCase testCase, GeneratedImage image);
}
