using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>Which sigma ramp replaces the interpolated training sigmas (use_karras_sigmas / use_exponential_sigmas / use_beta_sigmas).</summary>
internal enum SigmaRamp
{
    None,
    Karras,
    Exponential,
    Beta,
}

/// <summary>Reads the mutually exclusive sigma-ramp switches of a config.</summary>
internal static class SigmaRampOption
{
    public static SigmaRamp FromConfig(SchedulerConfig config, string schedulerName)
    {
        var karras = config.UseKarrasSigmas ?? false;
        var exponential = config.UseExponentialSigmas ?? false;
        var beta = config.UseBetaSigmas ?? false;
        if ((karras ? 1 : 0) + (exponential ? 1 : 0) + (beta ? 1 : 0) > 1)
            throw new InvalidRequestException(nameof(config), null, null, $"{schedulerName}: only one of use_karras_sigmas, use_exponential_sigmas and use_beta_sigmas can be set.");
        return karras ? SigmaRamp.Karras : exponential ? SigmaRamp.Exponential : beta ? SigmaRamp.Beta : SigmaRamp.None;
    }
}
