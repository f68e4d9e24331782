namespace LocalDiffusion.Upscaling;

/// <summary>How an <see cref="ImageUpscaler"/> runs its model.</summary>
public sealed record UpscalerOptions
{
    /// <summary>
    /// Side of the square tiles the picture is cut into, in input pixels (default 192): a larger picture runs as tiles so
    /// that memory stays bounded (an ESRGAN's activations at 4× are large). 0 runs the whole picture at once.
    /// </summary>
    public int TileSize { get; init; } = 192;

    /// <summary>
    /// How many input pixels neighbouring tiles share (default 32). A tile's outer quarter of the shared band only gives
    /// the network context (there it saw zero padding instead of the picture, and its output is off); across the middle
    /// half the two tiles' outputs are blended with linear weights, so no seam shows.
    /// </summary>
    public int TileOverlap { get; init; } = 32;

    /// <summary>Execution provider, as <see cref="PipelineOptions.Device"/> (default <c>cpu</c>).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>CPU threads per operator; null: ONNX Runtime's choice.</summary>
    public int? IntraOpThreads { get; init; }
}

/// <summary>Progress of one upscale: <paramref name="Tile"/> of <paramref name="TileCount"/> tiles done.</summary>
public sealed record UpscaleProgress(int Tile, int TileCount);
