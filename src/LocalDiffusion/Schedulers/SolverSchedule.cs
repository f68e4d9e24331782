namespace LocalDiffusion.Schedulers;

/// <summary>
/// Timesteps and sigmas of diffusers' multistep ODE solvers (DPM-Solver, UniPC, DEIS): n + 1 points spaced over the
/// training range with the last dropped (they never evaluate at t = 0), integer timesteps, and an optional sigma ramp
/// with timesteps placed back by ln σ.
/// </summary>
internal static class SolverSchedule
{
    /// <summary>How many of the noisiest timesteps lambda_min_clipped removes (torch.searchsorted on λ ascending).</summary>
    public static int ClippedTimesteps(NoiseSchedule schedule, double lambdaMinClipped)
    {
        var clipped = 0;
        for (var t = schedule.TrainTimesteps - 1; t >= 0; t--)
        {
            var alphaCumprod = schedule.AlphasCumprod[t];
            var lambda = MathF.Log(MathF.Sqrt(alphaCumprod)) - MathF.Log(MathF.Sqrt(1f - alphaCumprod));
            if (lambda < lambdaMinClipped)
                clipped++;
        }
        return clipped;
    }

    /// <summary>
    /// One run's sigmas (float32, with <paramref name="finalSigma"/> appended) and timesteps (truncated to integers, as
    /// diffusers' int64 cast does), after validating <paramref name="inferenceSteps"/>.
    /// </summary>
    /// <param name="schedule">The training schedule.</param>
    /// <param name="spacing">timestep_spacing.</param>
    /// <param name="lastTimestep">One past the largest usable timestep (see <see cref="Timesteps"/>).</param>
    /// <param name="inferenceSteps">n.</param>
    /// <param name="stepsOffset">steps_offset (leading spacing only).</param>
    /// <param name="ramp">The sigma ramp, if any.</param>
    /// <param name="sigmaMin">Low end of the ramp, or null for the smallest training sigma.</param>
    /// <param name="sigmaMax">High end of the ramp, or null for the largest training sigma.</param>
    /// <param name="finalSigma">The class's sigma after the last step, from the run's sigmas and the training sigmas.</param>
    public static (float[] Sigmas, float[] Timesteps) Create(
        NoiseSchedule schedule, TimestepSpacing spacing, int lastTimestep, int inferenceSteps, int stepsOffset,
        SigmaRamp ramp, double? sigmaMin, double? sigmaMax, Func<double[], float[], float> finalSigma)
    {
        TimestepSpacings.Validate(inferenceSteps, schedule.TrainTimesteps);
        var trainingSigmas = schedule.Sigmas();
        (double[] Sigmas, float[] Timesteps) Compute(int steps)
        {
            var timesteps = Timesteps(spacing, schedule.TrainTimesteps, lastTimestep, steps, stepsOffset);
            var sigmas = Sigmas(ramp, trainingSigmas, ref timesteps, steps, sigmaMin, sigmaMax);
            return (sigmas, timesteps.Select(t => (float)(long)t).ToArray());
        }
        // The solvers divide by the log-SNR step between consecutive sigmas: equal sigmas (from repeated rounded timesteps) are fatal.
        static float[] AsFloat(double[] sigmas) => Array.ConvertAll(sigmas, s => (float)s);
        var run = Compute(inferenceSteps);
        TimestepSpacings.RequireDistinct(AsFloat(run.Sigmas), inferenceSteps, steps => AsFloat(Compute(steps).Sigmas));
        return ([.. run.Sigmas.Select(s => (float)s), finalSigma(run.Sigmas, trainingSigmas)], run.Timesteps);
    }

    /// <summary>The spaced timesteps, descending, before any sigma ramp.</summary>
    /// <param name="spacing">timestep_spacing.</param>
    /// <param name="trainTimesteps">T.</param>
    /// <param name="lastTimestep">One past the largest usable timestep (T, or less where DPM-Solver clips λ).</param>
    /// <param name="inferenceSteps">n.</param>
    /// <param name="stepsOffset">steps_offset (leading spacing only).</param>
    private static double[] Timesteps(TimestepSpacing spacing, int trainTimesteps, int lastTimestep, int inferenceSteps, int stepsOffset) => spacing switch
    {
        TimestepSpacing.Linspace => NumpyRanges.Linspace(0, lastTimestep - 1, inferenceSteps + 1)
            .Select(t => Math.Round(t, MidpointRounding.ToEven)).Reverse().SkipLast(1).ToArray(),
        TimestepSpacing.Leading => Enumerable.Range(0, inferenceSteps + 1)
            .Select(i => (double)i * (lastTimestep / (inferenceSteps + 1))).Reverse().SkipLast(1)
            .Select(t => t + stepsOffset).ToArray(),
        _ => NumpyRanges.Arange(lastTimestep, 0, -(double)trainTimesteps / inferenceSteps)
            .Select(t => Math.Round(t, MidpointRounding.ToEven) - 1).ToArray(),
    };

    /// <summary>
    /// The sigmas at <paramref name="timesteps"/> (interpolated), or a ramp between the training extremes (or
    /// <paramref name="sigmaMin"/>/<paramref name="sigmaMax"/>) whose timesteps replace <paramref name="timesteps"/>:
    /// rounded for Karras, fractional for exponential and beta (diffusers v0.32, which builds those ramps descending,
    /// in float64).
    /// </summary>
    private static double[] Sigmas(SigmaRamp ramp, float[] trainingSigmas, ref double[] timesteps, int inferenceSteps, double? sigmaMin, double? sigmaMax)
    {
        if (ramp == SigmaRamp.None)
            return SigmaSchedules.Interpolate(timesteps, trainingSigmas);
        double low = sigmaMin ?? trainingSigmas[0], high = sigmaMax ?? trainingSigmas[^1];
        var sigmas = ramp switch
        {
            SigmaRamp.Karras => SigmaSchedules.Karras(low, high, inferenceSteps),
            SigmaRamp.Exponential => Exponential(low, high, inferenceSteps),
            _ => Beta(low, high, inferenceSteps),
        };
        var logSigmas = SigmaSchedules.Log(trainingSigmas);
        timesteps = ramp == SigmaRamp.Karras
            ? sigmas.Select(s => Math.Round(SigmaSchedules.SigmaToTimestep(s, logSigmas), MidpointRounding.ToEven)).ToArray()
            : sigmas.Select(s => SigmaSchedules.SigmaToTimestep(s, logSigmas)).ToArray();
        return sigmas;
    }

    // v0.32 builds these two in numpy float64, not torch float32 like the k-diffusion classes of v0.31: the first sigma
    // is then σmax to the last bit, and its timestep truncates to T − 1 rather than T − 2.
    private static double[] Exponential(double sigmaMin, double sigmaMax, int steps) =>
        NumpyRanges.Linspace(Math.Log(sigmaMax), Math.Log(sigmaMin), steps).Select(Math.Exp).ToArray();

    private static double[] Beta(double sigmaMin, double sigmaMax, int steps) =>
        NumpyRanges.Linspace(0, 1, steps)
            .Select(r => sigmaMin + BetaDistribution.Quantile(1 - r, 0.6, 0.6) * (sigmaMax - sigmaMin)).ToArray();
}
