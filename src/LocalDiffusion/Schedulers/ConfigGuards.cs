using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>The config checks several schedulers make alike, each failing with the same message naming the scheduler.</summary>
internal static class ConfigGuards
{
    /// <summary>Rejects <c>thresholding</c> (dynamic thresholding needs per-image quantiles of pixel-space samples).</summary>
    /// <exception cref="NotSupportedException">thresholding is true.</exception>
    public static void RejectThresholding(SchedulerConfig config, string schedulerName)
    {
        if (config.Thresholding ?? false)
            throw new NotSupportedException($"{schedulerName}: thresholding is not supported.");
    }

    /// <summary>Rejects the learned variance types (models that also predict variance).</summary>
    /// <exception cref="NotSupportedException">variance_type is learned or learned_range.</exception>
    public static void RejectLearnedVariance(SchedulerConfig config, string schedulerName)
    {
        if (config.VarianceType is "learned" or "learned_range")
            throw new NotSupportedException($"{schedulerName}: variance_type \"{config.VarianceType}\" (models that also predict variance) is not supported.");
    }

    /// <summary>Rejects a solver_order above 3, the highest the solver ports implement.</summary>
    /// <exception cref="ArgumentException">solverOrder is above 3 (reported against the config).</exception>
    public static void CheckSolverOrder(int solverOrder, string schedulerName)
    {
        if (solverOrder is < 1 or > 3)
            throw new InvalidRequestException("config", null, null, $"{schedulerName}: solver_order {solverOrder} is not supported; use 1, 2 or 3.");
    }
}
