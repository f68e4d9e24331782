namespace LocalDiffusion;

/// <summary>Whether the VAE decodes the latents in overlapping tiles (bounded memory for large images).</summary>
public enum VaeTiling
{
    /// <summary>Tiles above <see cref="VaeTilingOptions.AutoAbovePixels"/> output pixels, when the VAE takes any size.</summary>
    Auto,
    /// <summary>Always tiles (when the latents are larger than one tile).</summary>
    On,
    /// <summary>Never tiles: one VAE call per image.</summary>
    Off,
}

/// <summary>
/// Tiled VAE decoding as diffusers' <c>AutoencoderKL.enable_tiling</c>: latent tiles of <see cref="TileLatentSize"/>
/// overlapping by <see cref="Overlap"/>, each decoded alone, blended linearly across the overlap in pixels.
/// </summary>
public sealed record VaeTilingOptions
{
    /// <summary>When to tile.</summary>
    public VaeTiling Mode { get; init; } = VaeTiling.Auto;

    /// <summary>The side of a latent tile (diffusers: the VAE's sample_size / 8, 64 for SD 1.x, i.e. 512-pixel tiles).</summary>
    public int TileLatentSize { get; init; } = 64;

    /// <summary>The fraction of a tile shared with its neighbour (diffusers' tile_overlap_factor).</summary>
    public double Overlap { get; init; } = 0.25;

    /// <summary>With <see cref="VaeTiling.Auto"/>, images of more pixels than this (1024²) are decoded in tiles.</summary>
    public long AutoAbovePixels { get; init; } = 1024L * 1024;
}
