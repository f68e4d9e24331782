using System.Globalization;

namespace LocalDiffusion;

/// <summary>Where img2img starts in a schedule of a given strength: diffusers' <c>get_timesteps</c>.</summary>
internal static class StrengthSchedule
{
    /// <summary>
    /// diffusers: <c>init_timestep = min(int(steps × strength), steps)</c>, <c>t_start = max(steps − init_timestep, 0)</c>,
    /// and the schedule is entered at <c>t_start × order</c>. The strength goes through its shortest decimal text first,
    /// because diffusers multiplies by a Python float read from the same decimal (0.3 × 10 is 3, not 2.9999998).
    /// </summary>
    public static (int BeginIndex, int InitSteps) BeginIndex(int steps, float strength, int order)
    {
        var decimalStrength = double.Parse(strength.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        var initSteps = Math.Min((int)(steps * decimalStrength), steps);
        return (Math.Max(steps - initSteps, 0) * order, initSteps);
    }
}
