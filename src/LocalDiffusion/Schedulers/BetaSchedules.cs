using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>Training beta schedules and ᾱ, with diffusers' float32/float64 choices.</summary>
public static class BetaSchedules
{
    /// <summary>Betas of <paramref name="schedule"/> over <paramref name="trainTimesteps"/> steps, as diffusers builds them.</summary>
    public static float[] Create(BetaSchedule schedule, int trainTimesteps, double betaStart, double betaEnd)
    {
        switch (schedule)
        {
            case BetaSchedule.Linear:
                return TorchLinspace.Float32(betaStart, betaEnd, trainTimesteps);
            case BetaSchedule.ScaledLinear:
                var roots = TorchLinspace.Float32(Math.Sqrt(betaStart), Math.Sqrt(betaEnd), trainTimesteps);
                for (var i = 0; i < roots.Length; i++)
                    roots[i] *= roots[i];
                return roots;
            case BetaSchedule.SquaredCosCapV2:
                return SquaredCosine(trainTimesteps);
            default:
                throw new InvalidRequestException(nameof(schedule), schedule, null, "Unknown beta schedule.");
        }
    }

    /// <summary>ᾱ_t = ∏_{s≤t}(1 − β_s): torch's float32 cumprod, which accumulates in double and rounds each output.</summary>
    public static float[] AlphasCumprod(ReadOnlySpan<float> betas)
    {
        var result = new float[betas.Length];
        var product = 1.0;
        for (var i = 0; i < betas.Length; i++)
        {
            product *= 1f - betas[i];
            result[i] = (float)product;
        }
        return result;
    }

    /// <summary>
    /// Rescales betas so the last timestep has zero SNR, keeping the first (Lin et al. 2023, Algorithm 1),
    /// in float32 like diffusers' <c>rescale_zero_terminal_snr</c>.
    /// </summary>
    public static float[] RescaleZeroTerminalSnr(ReadOnlySpan<float> betas)
    {
        var sqrtAlphaBar = AlphasCumprod(betas);
        for (var i = 0; i < sqrtAlphaBar.Length; i++)
            sqrtAlphaBar[i] = MathF.Sqrt(sqrtAlphaBar[i]);

        var first = sqrtAlphaBar[0];
        var last = sqrtAlphaBar[^1];
        var scale = first / (first - last);
        var alphaBar = new float[sqrtAlphaBar.Length];
        for (var i = 0; i < alphaBar.Length; i++)
        {
            var shifted = (sqrtAlphaBar[i] - last) * scale;
            alphaBar[i] = shifted * shifted;
        }

        var rescaled = new float[alphaBar.Length];
        rescaled[0] = 1f - alphaBar[0];
        for (var i = 1; i < rescaled.Length; i++)
            rescaled[i] = 1f - alphaBar[i] / alphaBar[i - 1];
        return rescaled;
    }

    /// <summary>
    /// squaredcos_cap_v2: β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), 0.999) with ᾱ(t) = cos²((t + 0.008)/1.008 · π/2),
    /// in double (Python floats) and then stored as float32.
    /// </summary>
    private static float[] SquaredCosine(int trainTimesteps)
    {
        static double AlphaBar(double t)
        {
            var c = Math.Cos((t + 0.008) / 1.008 * Math.PI / 2);
            return c * c;
        }

        var betas = new float[trainTimesteps];
        for (var i = 0; i < trainTimesteps; i++)
        {
            var t1 = (double)i / trainTimesteps;
            var t2 = (double)(i + 1) / trainTimesteps;
            betas[i] = (float)Math.Min(1 - AlphaBar(t2) / AlphaBar(t1), 0.999);
        }
        return betas;
    }
}
