using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// <c>torch.linspace(start, end, steps, dtype=float32)</c> on the CPU, bit for bit: diffusers builds its betas with it,
/// and its float32 rounding differs from a plain <c>start + i·step</c> in about a quarter of the elements.
/// </summary>
/// <remarks>
/// PyTorch (1.13, AVX2 kernel) computes step = (end − start)/(steps − 1) in float32, fills the first half from
/// start and the second half back from end, and writes vectors of 8 lanes whose base is a fused multiply-add
/// (compiler contraction) while the lanes add k·step to it; elements past the last whole pair of vectors go through
/// the scalar formula. Verified element-exact against torch 1.13 (tools/scheduler_reference).
/// </remarks>
internal static class TorchLinspace
{
    private const int Lanes = 8;

    public static float[] Float32(double start, double end, int steps)
    {
        if (steps < 1)
            throw new InvalidRequestException(nameof(steps), steps, null, "linspace needs at least one point.");
        var s = (float)start;
        var e = (float)end;
        var values = new float[steps];
        if (steps == 1)
        {
            values[0] = s;
            return values;
        }

        var step = (e - s) / (steps - 1);
        var halfway = steps / 2;
        var vectorized = steps / (2 * Lanes) * (2 * Lanes);
        for (var chunk = 0; chunk < vectorized; chunk += Lanes)
        {
            var baseValue = chunk < halfway
                ? MathF.FusedMultiplyAdd(step, chunk, s)
                : MathF.FusedMultiplyAdd(-step, steps - chunk - 1, e);
            for (var k = 0; k < Lanes; k++)
                values[chunk + k] = baseValue + k * step;
        }
        for (var i = vectorized; i < steps; i++)
            values[i] = i < halfway ? s + step * i : e - step * (steps - i - 1);
        return values;
    }
}
