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
    /// The blend weight of each of a tile's <paramref name="length"/> output pixels, for tiles that share
    /// <paramref name="overlap"/> pixels: 0 over the outer quarter of the shared band (there the network saw its zero
    /// padding and the tile is only context), rising linearly across the middle half, 1 beyond; no ramp on a side that is the
    /// picture's edge. Neighbours' ramps mirror each other, so the weights of a shared band sum to 1 away from its ends.
    /// </summary>
    public static float[] Feather(int length, int overlap, bool rampIn, bool rampOut)
    {
        var weights = new float[length];
        var margin = overlap / 4f;
        var ramp = Math.Max(overlap / 2f, 1f);
        for (var u = 0; u < length; u++)
        {
            var w = 1f;
            if (rampIn) w = Math.Min(w, Math.Clamp((u + 0.5f - margin) / ramp, 0f, 1f));
            if (rampOut) w = Math.Min(w, Math.Clamp((length - u - 0.5f - margin) / ramp, 0f, 1f));
            weights[u] = w;
        }
        return weights;
    }
}
