using LocalDiffusion.Errors;

namespace LocalDiffusion.Evaluation;

/// <summary>
/// Reads a shapes-world picture (the twin of tools/shapes/analyse.py). Every pixel is labelled with its nearest
/// palette colour; the background is the most common label on the 2-pixel border; the object is the largest
/// 4-connected region of other labels; its colour is the most common label inside it; its shape is the template
/// (<see cref="ShapeKinds.Contains"/> over the region's bounding box) with the highest intersection over union;
/// its position is the 3 × 3 cell (<see cref="ScenePositions.Classify"/>) of the bounding box centre.
/// </summary>
public static class ShapesAnalyser
{
    private const int Border = 2;
    private const int Grid = 24;
    private const int MinObjectPixels = 4;
    private static readonly bool[][] Templates = Enum.GetValues<ShapeKind>().Select(Template).ToArray();

    /// <summary>Analyses row-major RGB8 pixels (<paramref name="width"/> × <paramref name="height"/> × 3 bytes).</summary>
    /// <exception cref="ArgumentException">The sizes are not positive or do not match the pixel count.</exception>
    public static SceneAttributes Analyse(ReadOnlySpan<byte> rgb, int width, int height)
    {
        if (width <= 2 * Border || height <= 2 * Border)
            throw new InvalidRequestException(nameof(width), $"{width}x{height}", "larger sides", $"Picture {width}×{height} is too small: each side must exceed {2 * Border} pixels.");
        if (rgb.Length != width * height * 3)
            throw new InvalidRequestException(nameof(rgb), null, null, $"Expected {width}×{height}×3 = {width * height * 3} bytes of RGB8, got {rgb.Length}.");

        var labels = new byte[width * height];
        for (var i = 0; i < labels.Length; i++)
            labels[i] = (byte)NamedColor.NearestIndex(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);

        var background = BorderMode(labels, width, height);
        var region = LargestRegion(labels, width, height, background);
        var backgroundName = NamedColor.Palette[background].Name;
        if (region.Count < MinObjectPixels)
            return new SceneAttributes(null, backgroundName, null, null);

        var counts = new int[NamedColor.Palette.Count];
        int x0 = width, x1 = 0, y0 = height, y1 = 0;
        var inRegion = new bool[labels.Length];
        foreach (var p in region)
        {
            inRegion[p] = true;
            counts[labels[p]]++;
            int x = p % width, y = p / width;
            x0 = Math.Min(x0, x); x1 = Math.Max(x1, x + 1);
            y0 = Math.Min(y0, y); y1 = Math.Max(y1, y + 1);
        }
        var color = NamedColor.Palette[Array.IndexOf(counts, counts.Max())].Name;
        var shape = BestShape(inRegion, width, x0, x1, y0, y1);
        var position = ScenePositions.Classify((x0 + x1) / 2.0 / width, (y0 + y1) / 2.0 / height);
        return new SceneAttributes(color, backgroundName, shape, position);
    }

    private static int BorderMode(byte[] labels, int width, int height)
    {
        var counts = new int[NamedColor.Palette.Count];
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
                if (x < Border || y < Border || x >= width - Border || y >= height - Border)
                    counts[labels[y * width + x]]++;
        return Array.IndexOf(counts, counts.Max());
    }

    private static List<int> LargestRegion(byte[] labels, int width, int height, int background)
    {
        var seen = new bool[labels.Length];
        var best = new List<int>();
        var queue = new Queue<int>();
        for (var start = 0; start < labels.Length; start++)
        {
            if (seen[start] || labels[start] == background)
                continue;
            var region = new List<int>();
            seen[start] = true;
            queue.Enqueue(start);
            while (queue.TryDequeue(out var p))
            {
                region.Add(p);
                int x = p % width, y = p / width;
                Visit(x > 0, p - 1);
                Visit(x < width - 1, p + 1);
                Visit(y > 0, p - width);
                Visit(y < height - 1, p + width);
            }
            if (region.Count > best.Count)
                best = region;
        }
        return best;

        void Visit(bool inside, int q)
        {
            if (inside && !seen[q] && labels[q] != background)
            {
                seen[q] = true;
                queue.Enqueue(q);
            }
        }
    }

    private static ShapeKind BestShape(bool[] inRegion, int width, int x0, int x1, int y0, int y1)
    {
        var sample = new bool[Grid * Grid];
        for (var row = 0; row < Grid; row++)
        {
            var y = y0 + (int)((row + 0.5) * (y1 - y0) / Grid);
            for (var column = 0; column < Grid; column++)
                sample[row * Grid + column] = inRegion[y * width + x0 + (int)((column + 0.5) * (x1 - x0) / Grid)];
        }
        var best = ShapeKind.Circle;
        var bestIou = -1.0;
        foreach (var shape in Enum.GetValues<ShapeKind>())
        {
            var template = Templates[(int)shape];
            int both = 0, either = 0;
            for (var i = 0; i < sample.Length; i++)
            {
                both += sample[i] && template[i] ? 1 : 0;
                either += sample[i] || template[i] ? 1 : 0;
            }
            var iou = both / (double)Math.Max(1, either);
            if (iou > bestIou)
            {
                bestIou = iou;
                best = shape;
            }
        }
        return best;
    }

    /// <summary>The shape sampled at the cell centres of a Grid × Grid split of its tight bounding box.</summary>
    private static bool[] Template(ShapeKind shape)
    {
        var (x0, x1, y0, y1) = shape.Bounds();
        var cells = new bool[Grid * Grid];
        for (var row = 0; row < Grid; row++)
            for (var column = 0; column < Grid; column++)
                cells[row * Grid + column] = shape.Contains(x0 + (column + 0.5) / Grid * (x1 - x0), y0 + (row + 0.5) / Grid * (y1 - y0));
        return cells;
    }
}
