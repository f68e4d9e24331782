namespace LocalDiffusion.Vae;

/// <summary>
/// Decodes latents in overlapping tiles and blends them, as diffusers' <c>AutoencoderKL.tiled_decode</c>: tiles of
/// T latents start every S = ⌊T·(1 − overlap)⌋; each decoded tile is blended with the tile above and the tile to its
/// left over the pixels they share, 8T − 8S (linear weights y/extent), then its top-left 8S pixels are kept. With
/// diffusers' 64-latent tiles this is its blend exactly (128 pixels, 384 kept). Where they differ, diffusers is off:
/// when T·(1 − overlap) is not whole it blends ⌊8T·overlap⌋ pixels and its picture comes out the wrong size, and
/// against an edge tile narrower than the blend it blends pixels that do not lie on each other; here the blend
/// always lines the two tiles' pixels up. Only two rows of decoded tiles are held, so memory grows with the
/// image's width, not its area.
/// </summary>
internal static class TiledVaeDecoder
{
    /// <summary>A decoded tile: CHW floats, 3 × <see cref="Height"/> × <see cref="Width"/>.</summary>
    private sealed record Tile(float[] Pixels, int Height, int Width);

    /// <summary>
    /// Decodes one image's latents [4,h,w] with <paramref name="decodeTile"/> (latents of one tile, its latent
    /// height and width → CHW pixels) into CHW pixels [3, 8h, 8w].
    /// </summary>
    public static float[] Decode(ReadOnlySpan<float> latents, int latentHeight, int latentWidth, VaeTilingOptions options,
        Func<float[], int, int, float[]> decodeTile, CancellationToken cancellationToken)
    {
        var factor = VaeDecoder.Factor;
        var tileLatent = options.TileLatentSize;
        var stride = Math.Max(1, (int)(tileLatent * (1 - options.Overlap)));
        var tileSample = tileLatent * factor;
        var keep = stride * factor;
        var blend = tileSample - keep;
        int height = latentHeight * factor, width = latentWidth * factor;
        var image = new float[3 * height * width];

        Tile[]? above = null;
        var top = 0;
        for (var i = 0; i < latentHeight; i += stride)
        {
            var row = new List<Tile>();
            var left = 0;
            var rowHeight = 0;
            for (var j = 0; j < latentWidth; j += stride)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int th = Math.Min(tileLatent, latentHeight - i), tw = Math.Min(tileLatent, latentWidth - j);
                var tile = new Tile(decodeTile(Crop(latents, latentHeight, latentWidth, i, j, th, tw), th, tw), th * factor, tw * factor);
                // diffusers blends in place, so a tile's blended pixels are what its right and lower neighbours see.
                if (above is not null) BlendVertical(above[row.Count], tile, keep, blend);
                if (row.Count > 0) BlendHorizontal(row[^1], tile, keep, blend);
                row.Add(tile);
                int keepH = Math.Min(keep, tile.Height), keepW = Math.Min(keep, tile.Width);
                Place(tile, keepH, keepW, image, height, width, top, left);
                left += keepW;
                rowHeight = keepH;
            }
            above = [.. row];
            top += rowHeight;
        }
        if (top != height)
            throw new InvalidOperationException($"tiled VAE decoding covered {top} of {height} rows (tile {tileLatent}, overlap {options.Overlap}).");
        return image;
    }

    /// <summary>Whether <paramref name="options"/> asks for tiles on a <paramref name="latentHeight"/>×<paramref name="latentWidth"/> image.</summary>
    public static bool Applies(VaeTilingOptions options, int latentHeight, int latentWidth)
    {
        if (latentHeight <= options.TileLatentSize && latentWidth <= options.TileLatentSize) return false;
        return options.Mode switch
        {
            VaeTiling.On => true,
            VaeTiling.Auto => (long)latentHeight * latentWidth * VaeDecoder.Factor * VaeDecoder.Factor > options.AutoAbovePixels,
            _ => false,
        };
    }

    private static float[] Crop(ReadOnlySpan<float> latents, int h, int w, int top, int left, int th, int tw)
    {
        var channels = latents.Length / (h * w); // 4, or 16 for SD 3 and FLUX
        var tile = new float[channels * th * tw];
        for (var c = 0; c < channels; c++)
            for (var y = 0; y < th; y++)
                latents.Slice(c * h * w + (top + y) * w + left, tw).CopyTo(tile.AsSpan(c * th * tw + y * tw, tw));
        return tile;
    }

    // b[:, :, y, :] = a[:, :, offset + y, :] · (1 − y/extent) + b[:, :, y, :] · (y/extent), b starting offset pixels below a.
    private static void BlendVertical(Tile a, Tile b, int offset, int blend)
    {
        var extent = Math.Min(Math.Min(a.Height - offset, b.Height), blend);
        var w = Math.Min(a.Width, b.Width);
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < extent; y++)
            {
                var t = (float)((double)y / extent);
                var rowA = a.Pixels.AsSpan(c * a.Height * a.Width + (offset + y) * a.Width, w);
                var rowB = b.Pixels.AsSpan(c * b.Height * b.Width + y * b.Width, w);
                for (var x = 0; x < w; x++) rowB[x] = rowA[x] * (1 - t) + rowB[x] * t;
            }
    }

    // b[:, :, :, x] = a[:, :, :, offset + x] · (1 − x/extent) + b[:, :, :, x] · (x/extent), b starting offset pixels right of a.
    private static void BlendHorizontal(Tile a, Tile b, int offset, int blend)
    {
        var extent = Math.Min(Math.Min(a.Width - offset, b.Width), blend);
        var h = Math.Min(a.Height, b.Height);
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < h; y++)
            {
                var rowA = a.Pixels.AsSpan(c * a.Height * a.Width + y * a.Width, a.Width);
                var rowB = b.Pixels.AsSpan(c * b.Height * b.Width + y * b.Width, b.Width);
                for (var x = 0; x < extent; x++)
                {
                    var t = (float)((double)x / extent);
                    rowB[x] = rowA[offset + x] * (1 - t) + rowB[x] * t;
                }
            }
    }

    private static void Place(Tile tile, int keepH, int keepW, float[] image, int height, int width, int top, int left)
    {
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < keepH; y++)
                tile.Pixels.AsSpan(c * tile.Height * tile.Width + y * tile.Width, keepW)
                    .CopyTo(image.AsSpan(c * height * width + (top + y) * width + left, keepW));
    }
}
