namespace LocalDiffusion.Schedulers;

/// <summary>
/// The schedule arithmetic shared by diffusers' two KDPM2 classes (DPM2 and DPM2 a): the base σ/t run, the
/// log-space midpoints their second evaluation sits at, and their interleaving of per-step arrays.
/// </summary>
internal static class Dpm2Schedule
{
    /// <summary>The k-diffusion run of <see cref="DiscreteSigmaSchedule"/>; the KDPM2 classes round Karras timesteps to integers.</summary>
    public static DiscreteSigmaSchedule Create(SecondOrderSigmaOptions options, int inferenceSteps)
    {
        var run = options.CreateRun(inferenceSteps);
        if (options.Ramp == SigmaRamp.Karras)
            for (var i = 0; i < run.Timesteps.Length; i++)
                run.Timesteps[i] = MathF.Round(run.Timesteps[i], MidpointRounding.ToEven);
        return run;
    }

    /// <summary>
    /// exp(lerp(ln a, ln b, ½)) in float32 as torch computes it (b − (b − a)·½ in log space): the geometric midpoint,
    /// 0 when <paramref name="to"/> is 0.
    /// </summary>
    public static float LogMidpoint(float from, float to)
    {
        float logFrom = MathF.Log(from), logTo = MathF.Log(to);
        return MathF.Exp(logTo - (logTo - logFrom) * 0.5f);
    }

    /// <summary>diffusers' <c>cat([x[:1], x[1:].repeat_interleave(2), x[-1:]])</c>: x₀, x₁, x₁, …, xₘ, xₘ, xₘ.</summary>
    public static float[] Interleave(ReadOnlySpan<float> values)
    {
        var result = new float[2 * values.Length];
        result[0] = values[0];
        for (var i = 1; i < values.Length; i++)
            result[2 * i - 1] = result[2 * i] = values[i];
        result[^1] = values[^1];
        return result;
    }

    /// <summary>The fractional training timestep at which the schedule has <paramref name="sigma"/> (diffusers' <c>_sigma_to_t</c>).</summary>
    public static float TimestepOf(float sigma, ReadOnlySpan<float> logTrainingSigmas) =>
        (float)SigmaSchedules.SigmaToTimestep(sigma, logTrainingSigmas);
}
