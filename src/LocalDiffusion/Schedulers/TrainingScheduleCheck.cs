using System.Globalization;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Checks at load time that a scheduler config describes a usable training schedule: each value may be in range on its
/// own and the schedule still be unusable (beta_start above beta_end, or betas so large that ᾱ underflows to 0 and
/// σ = √((1−ᾱ)/ᾱ) is infinite). Unchecked, such a config surfaced later as a step-count limit blamed on --steps, or
/// as NaN blamed on the UNet.
/// </summary>
internal static class TrainingScheduleCheck
{
    // diffusers' variance_type values (DDPMScheduler._get_variance; the learned ones are refused per scheduler later).
    private static readonly string[] VarianceTypes = ["fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range"];

    /// <summary>Refuses a config whose training schedule is not usable, naming the key and what is allowed.</summary>
    /// <exception cref="SchedulerConfigProblem">The schedule is unusable.</exception>
    public static void Check(SchedulerConfig c)
    {
        if (c.VarianceType is { } variance && !VarianceTypes.Contains(variance))
            throw Invalid("variance_type", $"\"{variance}\"", $"one of {string.Join(", ", VarianceTypes.Select(v => $"\"{v}\""))}");

        // Every built-in class fills absent beta keys from the same defaults (linear 0.0001 → 0.02, T = 1000).
        var defaults = BetaDefaults.Standard;
        var schedule = c.BetaSchedule ?? defaults.Schedule;
        if (c.TrainedBetas is null && schedule is BetaSchedule.Linear or BetaSchedule.ScaledLinear)
        {
            var start = c.BetaStart ?? defaults.BetaStart;
            var end = c.BetaEnd ?? defaults.BetaEnd;
            if (!(start < end))
            {
                var keys = (c.BetaStart, c.BetaEnd) switch
                {
                    (not null, not null) => $"keys \"beta_start\" ({Format(start)}) and \"beta_end\" ({Format(end)}) are",
                    (not null, null) => $"key \"beta_start\" is {Format(start)} and the absent \"beta_end\" defaults to {Format(end)}, which is",
                    _ => $"key \"beta_end\" is {Format(end)} and the absent \"beta_start\" defaults to {Format(start)}, which is",
                };
                throw new SchedulerConfigProblem($"{keys} out of order for a {(schedule == BetaSchedule.Linear ? "linear" : "scaled_linear")} schedule; " +
                    "expected beta_start < beta_end, both in (0, 1) (Stable Diffusion: 0.00085 → 0.012).");
            }
        }

        // ᾱ as the schedulers compute it (float32), without the zero-SNR rescale, which sets the last ᾱ to 0 on purpose.
        var noise = NoiseSchedule.FromConfig(c, defaults, supportsZeroSnrRescale: false);
        for (var t = 0; t < noise.TrainTimesteps; t++)
        {
            var alphaBar = noise.AlphasCumprod[t];
            if (float.IsFinite(alphaBar) && alphaBar > 0) continue;
            var key = c.TrainedBetas is not null ? "trained_betas" : "beta_end";
            throw Invalid(key, c.TrainedBetas is not null ? "an array of betas" : Format(c.BetaEnd ?? defaults.BetaEnd),
                $"betas small enough that alphas_cumprod = ∏(1 − β) stays positive; it reaches {Format(alphaBar)} at timestep {t} of " +
                $"{noise.TrainTimesteps} (float32), which makes sigma infinite (Stable Diffusion: scaled_linear 0.00085 → 0.012)");
        }
    }

    private static SchedulerConfigProblem Invalid(string key, string value, string expected) =>
        new($"key \"{key}\" is {value}; expected {expected}.");

    private static string Format(object? value) => value switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        null => "absent",
        _ => value.ToString() ?? "",
    };
}
