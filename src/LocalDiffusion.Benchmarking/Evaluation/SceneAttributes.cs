namespace LocalDiffusion.Evaluation;

/// <summary>What a shapes-world picture shows (or should show): one object on a flat background.</summary>
/// <param name="Color">The object's colour name; null when no object was found.</param>
/// <param name="Background">The background colour name.</param>
/// <param name="Shape">The object's shape; null when no object was found.</param>
/// <param name="Position">The object's position name (<see cref="ScenePositions"/>); null when no object was found.</param>
public sealed record SceneAttributes(string? Color, string Background, ShapeKind? Shape, string? Position);
