namespace LocalDiffusion.Denoising;

/// <summary>
/// The <c>timestep_cond</c> of an LCM-distilled UNet: the guidance scale w = g − 1 embedded as sin/cos features of
/// w·1000, as diffusers' <c>LatentConsistencyModelPipeline.get_guidance_scale_embedding</c> computes it (in float32,
/// frequencies exp(−i·ln(10000)/(d/2 − 1)), sines then cosines, a zero column when d is odd).
/// </summary>
internal static class GuidanceEmbedding
{
    /// <summary>The embedding of <paramref name="guidanceScale"/>, [rows, width] flattened (every row the same).</summary>
    public static float[] Compute(float guidanceScale, int width, int rows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 4);
        // torch.tensor(guidance_scale - 1): the Python float difference, then float32; × 1000.0 in float32.
        var w = (float)((double)guidanceScale - 1) * 1000f;
        var half = width / 2;
        var step = MathF.Log(10000f) / (half - 1);
        var row = new float[width];
        for (var i = 0; i < half; i++)
        {
            var angle = w * MathF.Exp(i * -step);
            row[i] = MathF.Sin(angle);
            row[half + i] = MathF.Cos(angle);
        }
        var result = new float[rows * width];
        for (var r = 0; r < rows; r++) row.CopyTo(result, r * width);
        return result;
    }
}
