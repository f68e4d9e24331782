namespace LocalDiffusion.Families.Flux;

/// <summary>
/// FLUX's latent tokens: [B,C,h,w] ↔ [B,(h/2)(w/2),4C], each token a 2×2 patch with channel-major order
/// (token[i·w/2 + j][c·4 + 2dy + dx] = x[c][2i + dy][2j + dx], diffusers' _pack_latents), and its position ids.
/// </summary>
internal static class FluxPacking
{
    public static void Pack(ReadOnlySpan<float> latents, int batch, int channels, int h, int w, Span<float> packed)
    {
        int th = h / 2, tw = w / 2, width = channels * 4;
        for (var b = 0; b < batch; b++)
            for (var c = 0; c < channels; c++)
                for (var y = 0; y < h; y++)
                    for (var x = 0; x < w; x++)
                        packed[((b * th + y / 2) * tw + x / 2) * width + c * 4 + (y % 2) * 2 + x % 2] = latents[((b * channels + c) * h + y) * w + x];
    }

    public static void Unpack(ReadOnlySpan<float> packed, int batch, int channels, int h, int w, Span<float> latents)
    {
        int th = h / 2, tw = w / 2, width = channels * 4;
        for (var b = 0; b < batch; b++)
            for (var c = 0; c < channels; c++)
                for (var y = 0; y < h; y++)
                    for (var x = 0; x < w; x++)
                        latents[((b * channels + c) * h + y) * w + x] = packed[((b * th + y / 2) * tw + x / 2) * width + c * 4 + (y % 2) * 2 + x % 2];
    }

    /// <summary>img_ids [(h/2)(w/2), 3]: (0, row, col) for each token, as diffusers' _prepare_latent_image_ids.</summary>
    public static float[] ImageIds(int h, int w)
    {
        int th = h / 2, tw = w / 2;
        var ids = new float[th * tw * 3];
        for (var i = 0; i < th; i++)
            for (var j = 0; j < tw; j++)
            {
                ids[(i * tw + j) * 3 + 1] = i;
                ids[(i * tw + j) * 3 + 2] = j;
            }
        return ids;
    }
}
