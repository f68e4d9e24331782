using LocalDiffusion.Errors;

namespace LocalDiffusion.Evaluation;

/// <summary>The shapes of the shapes world.</summary>
public enum ShapeKind
{
    /// <summary>A disc.</summary>
    Circle,
    /// <summary>An axis-aligned filled square.</summary>
    Square,
    /// <summary>An upright isosceles triangle as wide as it is tall.</summary>
    Triangle,
    /// <summary>A five-pointed star, one point up.</summary>
    Star,
    /// <summary>A plus sign.</summary>
    Cross,
}

/// <summary>Names and geometry of <see cref="ShapeKind"/>, the same numbers as tools/shapes/world.py.</summary>
public static class ShapeKinds
{
    private const double SquareHalf = 0.85;
    private const double CrossArm = 0.34;
    private const double StarInner = 0.5;
    private const double Sector = 2 * Math.PI / 5;

    /// <summary>The lower-case word prompts use ("circle").</summary>
    public static string Name(this ShapeKind shape) => shape.ToString().ToLowerInvariant();

    /// <summary>The shape a prompt word names.</summary>
    /// <exception cref="ArgumentException">The word names no shape.</exception>
    public static ShapeKind Parse(string name) =>
        Enum.GetValues<ShapeKind>().Cast<ShapeKind?>().FirstOrDefault(s => s!.Value.Name() == name)
        ?? throw new InvalidRequestException(nameof(name), null, null, _ => $"Unknown shape '{name}': expected one of {string.Join(", ", Enum.GetValues<ShapeKind>().Select(s => s.Name()))}.");

    /// <summary>Tight bounding box (x0, x1, y0, y1) of the shape of size 1 centred on the origin, y down.</summary>
    public static (double X0, double X1, double Y0, double Y1) Bounds(this ShapeKind shape) => shape switch
    {
        ShapeKind.Square => (-SquareHalf, SquareHalf, -SquareHalf, SquareHalf),
        ShapeKind.Star => (-Math.Sin(Sector), Math.Sin(Sector), -1, -Math.Cos(2 * Sector)),
        _ => (-1, 1, -1, 1),
    };

    /// <summary>Whether the point (x, y) (y down) lies inside the shape of size 1 centred on the origin.</summary>
    public static bool Contains(this ShapeKind shape, double x, double y)
    {
        double ax = Math.Abs(x), ay = Math.Abs(y);
        switch (shape)
        {
            case ShapeKind.Circle: return x * x + y * y <= 1;
            case ShapeKind.Square: return Math.Max(ax, ay) <= SquareHalf;
            case ShapeKind.Triangle: return y <= 1 && ax <= (y + 1) / 2;
            case ShapeKind.Cross: return (ax <= CrossArm && ay <= 1) || (ay <= CrossArm && ax <= 1);
            case ShapeKind.Star:
                // Fold the angle (0 = up) into one half-sector; inside when on the origin's side of the edge
                // from the outer point (1, 0) to the inner corner.
                var distance = Math.Sqrt(x * x + y * y);
                var theta = Math.Atan2(x, -y);
                var phi = Math.Abs(PositiveRemainder(theta + Sector / 2, Sector) - Sector / 2);
                double px = distance * Math.Cos(phi), py = distance * Math.Sin(phi);
                double edgeX = StarInner * Math.Cos(Sector / 2) - 1, edgeY = StarInner * Math.Sin(Sector / 2);
                return (edgeX * py - edgeY * (px - 1)) * (edgeY * 1) >= 0;
            default: throw new InvalidRequestException(nameof(shape), shape, null, called => $"not a {called}");
        }
    }

    private static double PositiveRemainder(double a, double m) => a - m * Math.Floor(a / m);
}
