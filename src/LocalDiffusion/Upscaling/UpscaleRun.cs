using LocalDiffusion.Errors;
namespace LocalDiffusion.Upscaling;

/// <summary>
/// One tiled pass of an <see cref="ImageUpscaler"/> over a CHW picture: pad its right and bottom edges (repeating the
/// last row and column) to the model's size multiple (and to its fixed input size, if it has one), run each tile, blend
/// the tiles' outputs with feather weights, crop.
/// </summary>
internal sealed class UpscaleRun(ImageUpscaler model, float[] chw, int width, int height)
{
    public float[] Execute(IProgress<UpscaleProgress>? progress, CancellationToken cancellationToken)
    {
        var m = model.SizeMultiple;
        var s = model.Scale;
        var (pw, ph) = ((width + m - 1) / m * m, (height + m - 1) / m * m);
        // A model fixed to one input size: tiles of exactly that size, the picture padded up to it when smaller.
        var tileW = model.FixedWidth ?? (model.TileSize == 0 ? pw : Math.Min(model.TileSize, pw));
        var tileH = model.FixedHeight ?? (model.TileSize == 0 ? ph : Math.Min(model.TileSize, ph));
        (pw, ph) = (Math.Max(pw, tileW), Math.Max(ph, tileH));
        var xs = TileLayout.Starts(pw, tileW, model.TileOverlap);
        var ys = TileLayout.Starts(ph, tileH, model.TileOverlap);
        var (ow, oh) = (pw * s, ph * s);
        var sum = new float[3 * ow * oh];
        var weight = new float[ow * oh];
        var tile = new float[3 * tileW * tileH];
        var output = new float[3 * tileW * tileH * s * s];
        var band = model.TileOverlap * s;
        var count = xs.Length * ys.Length;
        var done = 0;
        foreach (var y0 in ys)
        {
            var wy = TileLayout.Feather(tileH * s, band, y0 > 0, y0 + tileH < ph);
            foreach (var x0 in xs)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Extract(x0, y0, tileW, tileH, tile);
                model.RunTile(tile, tileW, tileH, output);
                var wx = TileLayout.Feather(tileW * s, band, x0 > 0, x0 + tileW < pw);
                Accumulate(output, tileW * s, tileH * s, x0 * s, y0 * s, ow, wx, wy, sum, weight);
                progress?.Report(new UpscaleProgress(++done, count));
            }
        }
        return Crop(sum, weight, ow, oh, width * s, height * s);
    }

    // The tile at (x0, y0) of the padded picture: coordinates past the real edge read the last row or column.
    private void Extract(int x0, int y0, int tileW, int tileH, float[] tile)
    {
        var plane = width * height;
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < tileH; y++)
            {
                var sy = Math.Min(y0 + y, height - 1);
                var source = chw.AsSpan(c * plane + sy * width, width);
                var target = tile.AsSpan((c * tileH + y) * tileW, tileW);
                var inside = Math.Clamp(width - x0, 0, tileW);
                source.Slice(x0, inside).CopyTo(target);
                target[inside..].Fill(source[width - 1]);
            }
    }

    private static void Accumulate(float[] output, int tw, int th, int ox, int oy, int ow, float[] wx, float[] wy, float[] sum, float[] weight)
    {
        var plane = sum.Length / 3;
        for (var y = 0; y < th; y++)
        {
            var row = (oy + y) * ow + ox;
            for (var x = 0; x < tw; x++)
            {
                var w = wx[x] * wy[y];
                weight[row + x] += w;
                for (var c = 0; c < 3; c++)
                    sum[c * plane + row + x] += w * output[(c * th + y) * tw + x];
            }
        }
    }

    // Weighted average, cut to the unpadded size; a non-finite value means a broken model, never a silent black picture.
    private float[] Crop(float[] sum, float[] weight, int ow, int oh, int w, int h)
    {
        var result = new float[3 * w * h];
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < h; y++)
                for (var x = 0; x < w; x++)
                {
                    var v = sum[c * ow * oh + y * ow + x] / weight[y * ow + x];
                    if (!float.IsFinite(v))
                        throw new GenerationNumericsException(NumericsStage.Upscaler, null,
                            $"the upscaler {model.ModelPath} returned NaN or infinity at ({x}, {y}): a float16 model overflowing, or a broken export.");
                    result[(c * h + y) * w + x] = v;
                }
        return result;
    }
}
