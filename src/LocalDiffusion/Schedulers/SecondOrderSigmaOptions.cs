namespace LocalDiffusion.Schedulers;

/// <summary>
/// What diffusers' second-order k-diffusion classes (Heun, KDPM2, KDPM2 ancestral) read from a config: the training
/// schedule with their shared defaults (linear 0.00085 → 0.012, no zero-SNR rescale), prediction type, spacing and
/// sigma ramp. They have no final_sigmas_type: their runs end at σ = 0.
/// </summary>
internal sealed record SecondOrderSigmaOptions(
    NoiseSchedule Schedule, PredictionType Prediction, TimestepSpacing Spacing, int StepsOffset, SigmaRamp Ramp, double? SigmaMin, double? SigmaMax)
{
    private static readonly BetaDefaults Defaults = new(1000, 0.00085, 0.012, BetaSchedule.Linear);

    /// <exception cref="ArgumentException">More than one sigma ramp is switched on.</exception>
    public static SecondOrderSigmaOptions FromConfig(SchedulerConfig config, string schedulerName) => new(
        NoiseSchedule.FromConfig(config, Defaults, supportsZeroSnrRescale: false, finiteTerminalSigma: false),
        config.PredictionType ?? PredictionType.Epsilon,
        config.TimestepSpacing ?? TimestepSpacing.Linspace,
        config.StepsOffset ?? 0,
        SigmaRampOption.FromConfig(config, schedulerName),
        config.SigmaMin,
        config.SigmaMax);

    /// <summary>The σ/t run of n steps, ending at σ = 0.</summary>
    public DiscreteSigmaSchedule CreateRun(int inferenceSteps) =>
        DiscreteSigmaSchedule.Create(Schedule, Spacing, StepsOffset, inferenceSteps, Ramp, SigmaMin, SigmaMax, FinalSigmasType.Zero);
}
