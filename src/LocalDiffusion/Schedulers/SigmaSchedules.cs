namespace LocalDiffusion.Schedulers;

/// <summary>Sigma-space helpers of the k-diffusion samplers, with diffusers' numpy/torch precision at each step.</summary>
public static class SigmaSchedules
{
    /// <summary>Karras et al. (2022) ramp: (σmax^(1/ρ) + r·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ for r evenly spaced in [0, 1], ρ = 7, in double.</summary>
    public static double[] Karras(double sigmaMin, double sigmaMax, int steps)
    {
        const double rho = 7.0;
        var ramp = NumpyRanges.Linspace(0, 1, steps);
        var minInvRho = Math.Pow(sigmaMin, 1 / rho);
        var maxInvRho = Math.Pow(sigmaMax, 1 / rho);
        var sigmas = new double[steps];
        for (var i = 0; i < steps; i++)
            sigmas[i] = Math.Pow(maxInvRho + ramp[i] * (minInvRho - maxInvRho), rho);
        return sigmas;
    }

    /// <summary>Exponential ramp: exp of torch's float32 linspace from ln σmax to ln σmin.</summary>
    public static double[] Exponential(double sigmaMin, double sigmaMax, int steps)
    {
        var logs = TorchLinspace.Float32(Math.Log(sigmaMax), Math.Log(sigmaMin), steps);
        var sigmas = new double[steps];
        for (var i = 0; i < steps; i++)
            sigmas[i] = MathF.Exp(logs[i]);
        return sigmas;
    }

    /// <summary>
    /// Beta ramp ("Beta Sampling is All You Need", Lee et al. 2024): σmin + q·(σmax − σmin) at the Beta(α, β) quantiles q of
    /// 1 − r for r evenly spaced in [0, 1], rounded to float32 as diffusers stores them.
    /// </summary>
    public static double[] Beta(double sigmaMin, double sigmaMax, int steps, double alpha = 0.6, double beta = 0.6)
    {
        var ramp = NumpyRanges.Linspace(0, 1, steps);
        var sigmas = new double[steps];
        for (var i = 0; i < steps; i++)
            sigmas[i] = (float)(sigmaMin + BetaDistribution.Quantile(1 - ramp[i], alpha, beta) * (sigmaMax - sigmaMin));
        return sigmas;
    }

    /// <summary>
    /// numpy's <c>np.interp(t, arange(len(σ)), σ)</c>: the training sigmas (index = timestep) linearly interpolated at
    /// each (possibly fractional) timestep, in double.
    /// </summary>
    public static double[] Interpolate(ReadOnlySpan<double> timesteps, ReadOnlySpan<float> trainingSigmas)
    {
        var result = new double[timesteps.Length];
        var last = trainingSigmas.Length - 1;
        for (var i = 0; i < timesteps.Length; i++)
        {
            var t = timesteps[i];
            if (t <= 0)
                result[i] = trainingSigmas[0];
            else if (t >= last)
                result[i] = trainingSigmas[last];
            else
            {
                var j = (int)Math.Floor(t);
                // Same arithmetic as numpy: exact at grid points, else slope·(t − j) + σ_j.
                result[i] = t == j
                    ? trainingSigmas[j]
                    : ((double)trainingSigmas[j + 1] - trainingSigmas[j]) * (t - j) + trainingSigmas[j];
            }
        }
        return result;
    }

    /// <summary>ln σ of the training sigmas, in float32 like <c>np.log</c> of a float32 array.</summary>
    public static float[] Log(ReadOnlySpan<float> sigmas)
    {
        var logs = new float[sigmas.Length];
        for (var i = 0; i < logs.Length; i++)
            logs[i] = MathF.Log(sigmas[i]);
        return logs;
    }

    /// <summary>
    /// The fractional timestep whose sigma is <paramref name="sigma"/>: linear interpolation in ln σ between the two
    /// neighbouring training sigmas (diffusers' <c>_sigma_to_t</c>), clamped to [0, T−1].
    /// </summary>
    /// <param name="sigma">The sigma to place.</param>
    /// <param name="logSigmas">ln σ_t of the training schedule, ascending in t (see <see cref="Log"/>).</param>
    public static double SigmaToTimestep(double sigma, ReadOnlySpan<float> logSigmas)
    {
        var logSigma = Math.Log(Math.Max(sigma, 1e-10));
        // The last index whose ln σ is ≤ ln sigma (0 when none is), kept one below the end so a neighbour exists.
        var low = 0;
        for (var t = 0; t < logSigmas.Length; t++)
            if (logSigma - logSigmas[t] >= 0)
                low = t;
        low = Math.Min(low, logSigmas.Length - 2);

        var lowLog = logSigmas[low];
        var highLog = logSigmas[low + 1];
        // numpy: (float32 − float64) / (float32 − float32): the denominator is rounded to float32.
        var w = (lowLog - logSigma) / (lowLog - highLog);
        w = Math.Clamp(w, 0, 1);
        return (1 - w) * low + w * (low + 1);
    }
}
