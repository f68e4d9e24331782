using System.Globalization;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Denoising;

/// <summary>
/// Splitting one schedule between two models, as diffusers' SDXL pipelines do for the base → refiner hand-off ("ensemble
/// of expert denoisers"): a fraction f of the schedule becomes the timestep cutoff int(round(T − f·T)), with T the
/// scheduler's training timesteps. The base (<c>denoising_end</c> = f) runs the timesteps ≥ the cutoff; the refiner
/// (<c>denoising_start</c> = f) runs those below it, one more for a second-order scheduler that would otherwise start
/// between the two evaluations of a step.
/// </summary>
internal static class ScheduleSplit
{
    /// <summary>The discrete timestep where a split at <paramref name="fraction"/> falls (Python's round: half to even).</summary>
    public static int Cutoff(float fraction, int trainTimesteps)
    {
        // The float is read as the decimal it prints as (0.8f → 0.8), as Python holds the value the user wrote.
        var f = double.Parse(fraction.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        return (int)Math.Round(trainTimesteps - f * trainTimesteps, MidpointRounding.ToEven);
    }

    /// <summary>diffusers' <c>denoising_end</c>: the number of evaluations from the start whose timestep is ≥ the cutoff.</summary>
    public static int EndIndex(IScheduler scheduler, float fraction, int trainTimesteps)
    {
        var cutoff = Cutoff(fraction, trainTimesteps);
        var count = 0;
        foreach (var t in scheduler.Timesteps)
            if (t >= cutoff) count++;
        return count;
    }

    /// <summary>diffusers' <c>denoising_start</c>: the index of the first evaluation whose timestep is below the cutoff.</summary>
    public static int StartIndex(IScheduler scheduler, float fraction, int trainTimesteps)
    {
        var cutoff = Cutoff(fraction, trainTimesteps);
        var count = 0;
        foreach (var t in scheduler.Timesteps)
            if (t < cutoff) count++;
        if (scheduler.Order == 2 && count % 2 == 0) count++;
        return Math.Max(scheduler.Timesteps.Count - count, 0);
    }
}
