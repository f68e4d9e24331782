namespace LocalDiffusion.Schedulers;

/// <summary>The schedulers LocalDiffusion ships, with their names; <see cref="SchedulerRegistry"/> starts from this list.</summary>
internal static class BuiltInSchedulers
{
    // The first entry of each diffusers class is its plain form, which CreateFromConfig picks for that class.
    public static IReadOnlyList<(SchedulerInfo Info, Func<SchedulerConfig, IScheduler> Factory)> All { get; } =
    [
        (new SchedulerInfo("pndm", "PLMS", "PNDMScheduler", ["PNDM"], IsStochastic: false),
            config => new PndmScheduler(config)),
        (new SchedulerInfo("ddim", "DDIM", "DDIMScheduler", [], IsStochastic: false),
            config => new DdimScheduler(config)),
        (new SchedulerInfo("euler", "Euler", "EulerDiscreteScheduler", ["k_euler"], IsStochastic: false),
            config => new EulerDiscreteScheduler(config)),
        (new SchedulerInfo("euler_a", "Euler a", "EulerAncestralDiscreteScheduler", ["Euler Ancestral", "k_euler_ancestral"], IsStochastic: true),
            config => new EulerAncestralDiscreteScheduler(config)),
        (new SchedulerInfo("lms", "LMS", "LMSDiscreteScheduler", ["k_lms"], IsStochastic: false),
            config => new LmsDiscreteScheduler(config)),
        (new SchedulerInfo("dpmpp_2m", "DPM++ 2M", "DPMSolverMultistepScheduler", ["k_dpmpp_2m", "DPMSolverMultistep"], IsStochastic: false),
            config => new DpmSolverMultistepScheduler(config)),
        (new SchedulerInfo("dpmpp_2m_karras", "DPM++ 2M Karras", "DPMSolverMultistepScheduler", ["k_dpmpp_2m_karras"], IsStochastic: false),
            config => new DpmSolverMultistepScheduler(config with { UseKarrasSigmas = true })),
        (new SchedulerInfo("heun", "Heun", "HeunDiscreteScheduler", ["k_heun"], IsStochastic: false),
            config => new HeunDiscreteScheduler(config)),
        (new SchedulerInfo("dpm2", "DPM2", "KDPM2DiscreteScheduler", ["k_dpm_2"], IsStochastic: false),
            config => new KDpm2DiscreteScheduler(config)),
        (new SchedulerInfo("dpm2_karras", "DPM2 Karras", "KDPM2DiscreteScheduler", ["k_dpm_2_karras"], IsStochastic: false),
            config => new KDpm2DiscreteScheduler(config with { UseKarrasSigmas = true })),
        (new SchedulerInfo("dpm2_a", "DPM2 a", "KDPM2AncestralDiscreteScheduler", ["DPM2 Ancestral", "k_dpm_2_ancestral"], IsStochastic: true),
            config => new KDpm2AncestralDiscreteScheduler(config)),
        (new SchedulerInfo("dpm2_a_karras", "DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", ["k_dpm_2_ancestral_karras"], IsStochastic: true),
            config => new KDpm2AncestralDiscreteScheduler(config with { UseKarrasSigmas = true })),
        (new SchedulerInfo("dpmpp_2m_sde", "DPM++ 2M SDE", "DPMSolverMultistepScheduler", ["k_dpmpp_2m_sde"], IsStochastic: true),
            config => new DpmSolverMultistepScheduler(config with { AlgorithmType = DpmSolverAlgorithmType.SdeDpmSolverPlusPlus })),
        (new SchedulerInfo("dpmpp_2m_sde_karras", "DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", ["k_dpmpp_2m_sde_karras"], IsStochastic: true),
            config => new DpmSolverMultistepScheduler(config with { AlgorithmType = DpmSolverAlgorithmType.SdeDpmSolverPlusPlus, UseKarrasSigmas = true })),
        (new SchedulerInfo("euler_exponential", "Euler Exponential", "EulerDiscreteScheduler", [], IsStochastic: false),
            config => new EulerDiscreteScheduler(config with { UseExponentialSigmas = true })),
        (new SchedulerInfo("euler_beta", "Euler Beta", "EulerDiscreteScheduler", [], IsStochastic: false),
            config => new EulerDiscreteScheduler(config with { UseBetaSigmas = true })),
        (new SchedulerInfo("ddpm", "DDPM", "DDPMScheduler", [], IsStochastic: true),
            config => new DdpmScheduler(config)),
        (new SchedulerInfo("dpmpp_3m_sde", "DPM++ 3M SDE", "DPMSolverMultistepScheduler", ["k_dpmpp_3m_sde"], IsStochastic: true),
            config => new DpmSolverMultistepScheduler(config with { AlgorithmType = DpmSolverAlgorithmType.SdeDpmSolverPlusPlus, SolverOrder = 3 })),
        (new SchedulerInfo("dpmpp_3m_sde_karras", "DPM++ 3M SDE Karras", "DPMSolverMultistepScheduler", ["k_dpmpp_3m_sde_karras"], IsStochastic: true),
            config => new DpmSolverMultistepScheduler(config with { AlgorithmType = DpmSolverAlgorithmType.SdeDpmSolverPlusPlus, SolverOrder = 3, UseKarrasSigmas = true })),
        (new SchedulerInfo("dpmpp_2m_exponential", "DPM++ 2M Exponential", "DPMSolverMultistepScheduler", [], IsStochastic: false),
            config => new DpmSolverMultistepScheduler(config with { UseExponentialSigmas = true })),
        (new SchedulerInfo("dpmpp_2m_beta", "DPM++ 2M Beta", "DPMSolverMultistepScheduler", [], IsStochastic: false),
            config => new DpmSolverMultistepScheduler(config with { UseBetaSigmas = true })),
        (new SchedulerInfo("unipc", "UniPC", "UniPCMultistepScheduler", ["UniPCMultistep"], IsStochastic: false),
            config => new UniPcMultistepScheduler(config)),
    ];
}
