namespace LocalDiffusion.Upscaling;

/// <summary>
/// Where the tiles of one axis start, and their feather weights: tiles of <c>tile</c> pixels every <c>tile − overlap</c>,
/// the last one flush with the end; every start a multiple of the model's size multiple.
/// </summary>
internal static class TileLayout
{
    /// <summary>Tile starts along an axis of <paramref name="size"/> pixels (one tile when it fits).</summary>
    public static int[] Starts(int size, int tile, int overlap)
    {
        if (size <= tile) return [0];
        var stride = tile - overlap;
        var count = (size - overlap + stride - 1) / stride;
        var starts = new int[count];
        for (var i = 0; i < count; i++)
            starts[i] = Math.Min(i * stride, size - tile);
        return starts;
    }

    /// <summary>
    /// The blend weight of each of a tile's <paramref name="length"/> output pixels: rising linearly over the first
    /// <paramref name="ramp"/> pixels unless the tile starts at the picture's edge, falling over the last unless it ends
    /// there; 1 between. The edges of a tile are where its output is least like the whole picture's.
    /// </summary>
    public static float[] Feather(int length, int ramp, bool rampIn, bool rampOut)
    {
        var weights = new float[length];
        for (var u = 0; u < length; u++)
        {
            var w = 1f;
            if (rampIn) w = Math.Min(w, (u + 0.5f) / ramp);
            if (rampOut) w = Math.Min(w, (length - u - 0.5f) / ramp);
            weights[u] = w;
        }
        return weights;
    }
}
