namespace LocalDiffusion.Schedulers;

/// <summary>
/// Timesteps and sigmas of the k-diffusion style schedulers (Euler, Euler a, LMS) for one inference run, computed as
/// their diffusers <c>set_timesteps</c> does: spacing → float32 timesteps → training sigmas interpolated in double →
/// optional Karras/exponential/beta ramp with timesteps placed back by log-sigma → final sigma appended → float32.
/// </summary>
internal sealed record DiscreteSigmaSchedule(float[] Timesteps, float[] Sigmas)
{
    /// <param name="schedule">The training schedule.</param>
    /// <param name="spacing">timestep_spacing.</param>
    /// <param name="stepsOffset">steps_offset.</param>
    /// <param name="inferenceSteps">n.</param>
    /// <param name="ramp">The sigma ramp, if any.</param>
    /// <param name="sigmaMin">Low end of the ramp, or null for the smallest interpolated sigma.</param>
    /// <param name="sigmaMax">High end of the ramp, or null for the largest interpolated sigma.</param>
    /// <param name="finalSigma">The sigma appended after the last step.</param>
    public static DiscreteSigmaSchedule Create(
        NoiseSchedule schedule, TimestepSpacing spacing, int stepsOffset, int inferenceSteps,
        SigmaRamp ramp, double? sigmaMin, double? sigmaMax, FinalSigmasType finalSigma)
    {
        TimestepSpacings.Validate(inferenceSteps, schedule.TrainTimesteps);
        // diffusers casts the spaced timesteps to float32 before interpolating.
        var timesteps = TimestepSpacings.Create(spacing, schedule.TrainTimesteps, inferenceSteps, stepsOffset)
            .Select(t => (double)(float)t).ToArray();
        var trainingSigmas = schedule.Sigmas();
        var sigmas = SigmaSchedules.Interpolate(timesteps, trainingSigmas);

        if (ramp != SigmaRamp.None)
        {
            var low = sigmaMin ?? sigmas[^1];
            var high = sigmaMax ?? sigmas[0];
            sigmas = ramp switch
            {
                SigmaRamp.Karras => SigmaSchedules.Karras(low, high, inferenceSteps),
                SigmaRamp.Exponential => SigmaSchedules.Exponential(low, high, inferenceSteps),
                _ => SigmaSchedules.Beta(low, high, inferenceSteps),
            };
            var logSigmas = SigmaSchedules.Log(trainingSigmas);
            timesteps = sigmas.Select(s => SigmaSchedules.SigmaToTimestep(s, logSigmas)).ToArray();
        }

        var withFinal = new float[sigmas.Length + 1];
        for (var i = 0; i < sigmas.Length; i++)
            withFinal[i] = (float)sigmas[i];
        withFinal[^1] = finalSigma == FinalSigmasType.SigmaMin ? trainingSigmas[0] : 0f;
        return new DiscreteSigmaSchedule(timesteps.Select(t => (float)t).ToArray(), withFinal);
    }

    /// <summary>Initial noise scale: σmax for linspace/trailing spacing, else √(σmax² + 1) (diffusers' choice for leading).</summary>
    public float InitNoiseSigma(TimestepSpacing spacing)
    {
        var max = Sigmas.Max();
        return spacing is TimestepSpacing.Linspace or TimestepSpacing.Trailing ? max : MathF.Sqrt(max * max + 1);
    }
}
