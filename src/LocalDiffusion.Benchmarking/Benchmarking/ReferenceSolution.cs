using System.Globalization;

namespace LocalDiffusion.Benchmarking;

/// <summary>
/// The high-step run every result is compared with, e.g. <c>dpmpp_2m@100</c>: deterministic samplers converge to it
/// as their step count grows (they solve the same probability-flow ODE).
/// </summary>
/// <param name="Scheduler">Scheduler id or name.</param>
/// <param name="Steps">Its step count.</param>
public sealed record ReferenceSolution(string Scheduler, int Steps)
{
    /// <summary>DPM++ 2M at 100 steps: second order, so far closer to the ODE's solution than any benchmarked row.</summary>
    public static ReferenceSolution Default { get; } = new("dpmpp_2m", 100);

    /// <summary>Parses <c>NAME@STEPS</c>, e.g. <c>euler@200</c>.</summary>
    /// <exception cref="FormatException">The text is not of that form or STEPS is not a whole number from 1 to 1000.</exception>
    public static ReferenceSolution Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var at = text.LastIndexOf('@');
        if (at <= 0 || at == text.Length - 1)
            throw new FormatException($"Reference '{text}' is not of the form NAME@STEPS (e.g. {Default}).");
        if (!int.TryParse(text.AsSpan(at + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var steps) || steps is < 1 or > 1000)
            throw new FormatException($"Reference '{text}': '{text[(at + 1)..]}' is not a step count from 1 to 1000 (expected NAME@STEPS, e.g. {Default}).");
        return new ReferenceSolution(text[..at].Trim(), steps);
    }

    /// <summary>The <c>NAME@STEPS</c> form.</summary>
    public override string ToString() => $"{Scheduler}@{Steps}";
}
