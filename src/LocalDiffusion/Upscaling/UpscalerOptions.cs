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
    /// How many input pixels neighbouring tiles share (default 32); in the shared band their outputs are blended with
    /// weights that fall linearly to 0 at each tile's edge, where the network saw zero padding instead of the picture.
    /// </summary>
    public int TileOverlap { get; init; } = 32;

    /// <summary>Execution provider, as <see cref="PipelineOptions.Device"/> (default <c>cpu</c>).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>CPU threads per operator; null: ONNX Runtime's choice.</summary>
    public int? IntraOpThreads { get; init; }
}

/// <summary>Progress of one upscale: <paramref name="Tile"/> of <paramref name="TileCount"/> tiles done.</summary>
public sealed record UpscaleProgress(int Tile, int TileCount);
