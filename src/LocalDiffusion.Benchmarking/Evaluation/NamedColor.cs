using LocalDiffusion.Errors;

namespace LocalDiffusion.Evaluation;

/// <summary>A colour name of the shapes world and its reference sRGB value.</summary>
/// <param name="Name">Lower-case name as prompts use it ("red", "gray").</param>
/// <param name="R">Red, 0–255.</param>
/// <param name="G">Green, 0–255.</param>
/// <param name="B">Blue, 0–255.</param>
public sealed record NamedColor(string Name, byte R, byte G, byte B)
{
    /// <summary>
    /// The palette the shapes model was trained on (tools/shapes/world.py <c>COLORS</c>; keep the two in step).
    /// Objects and backgrounds both use it.
    /// </summary>
    public static IReadOnlyList<NamedColor> Palette { get; } =
    [
        new("red", 215, 35, 35),
        new("green", 40, 160, 60),
        new("blue", 35, 75, 215),
        new("yellow", 245, 215, 35),
        new("orange", 245, 135, 25),
        new("purple", 135, 55, 175),
        new("white", 245, 245, 245),
        new("black", 20, 20, 20),
        new("pink", 245, 140, 190),
        new("gray", 128, 128, 128),
    ];

    /// <summary>Index into <see cref="Palette"/> of the colour nearest to an RGB value (squared sRGB distance).</summary>
    public static int NearestIndex(byte r, byte g, byte b)
    {
        var best = 0;
        var bestDistance = int.MaxValue;
        for (var i = 0; i < Palette.Count; i++)
        {
            var c = Palette[i];
            int dr = r - c.R, dg = g - c.G, db = b - c.B;
            var distance = dr * dr + dg * dg + db * db;
            if (distance < bestDistance)
            {
                bestDistance = distance;
                best = i;
            }
        }
        return best;
    }

    /// <summary>The palette entry called <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">The name is not in the palette.</exception>
    public static NamedColor Parse(string name) =>
        Palette.FirstOrDefault(c => c.Name == name)
        ?? throw new InvalidRequestException(nameof(name), null, null, _ => $"Unknown colour '{name}': expected one of {string.Join(", ", Palette.Select(c => c.Name))}.");
}
