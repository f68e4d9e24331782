namespace LocalDiffusion.Schedulers;

/// <summary>The strings diffusers writes in <c>scheduler_config.json</c> for each option value.</summary>
internal static class ConfigNames
{
    public static readonly IReadOnlyDictionary<string, BetaSchedule> BetaSchedules = new Dictionary<string, BetaSchedule>
    {
        ["linear"] = BetaSchedule.Linear,
        ["scaled_linear"] = BetaSchedule.ScaledLinear,
        ["squaredcos_cap_v2"] = BetaSchedule.SquaredCosCapV2,
    };

    public static readonly IReadOnlyDictionary<string, PredictionType> PredictionTypes = new Dictionary<string, PredictionType>
    {
        ["epsilon"] = PredictionType.Epsilon,
        ["v_prediction"] = PredictionType.VPrediction,
        ["sample"] = PredictionType.Sample,
        // Euler-family schedulers accept this older spelling of "sample".
        ["original_sample"] = PredictionType.Sample,
    };

    public static readonly IReadOnlyDictionary<string, TimestepSpacing> TimestepSpacings = new Dictionary<string, TimestepSpacing>
    {
        ["leading"] = TimestepSpacing.Leading,
        ["trailing"] = TimestepSpacing.Trailing,
        ["linspace"] = TimestepSpacing.Linspace,
    };

    public static readonly IReadOnlyDictionary<string, FinalSigmasType> FinalSigmasTypes = new Dictionary<string, FinalSigmasType>
    {
        ["zero"] = FinalSigmasType.Zero,
        ["sigma_min"] = FinalSigmasType.SigmaMin,
    };

    public static readonly IReadOnlyDictionary<string, DpmSolverAlgorithmType> AlgorithmTypes = new Dictionary<string, DpmSolverAlgorithmType>
    {
        ["dpmsolver++"] = DpmSolverAlgorithmType.DpmSolverPlusPlus,
        ["dpmsolver"] = DpmSolverAlgorithmType.DpmSolver,
        ["sde-dpmsolver++"] = DpmSolverAlgorithmType.SdeDpmSolverPlusPlus,
        ["sde-dpmsolver"] = DpmSolverAlgorithmType.SdeDpmSolver,
        ["deis"] = DpmSolverAlgorithmType.Deis,
    };

    public static readonly IReadOnlyDictionary<string, DpmSolverType> SolverTypes = new Dictionary<string, DpmSolverType>
    {
        ["midpoint"] = DpmSolverType.Midpoint,
        ["heun"] = DpmSolverType.Heun,
        ["logrho"] = DpmSolverType.Logrho,
        ["bh1"] = DpmSolverType.Bh1,
        ["bh2"] = DpmSolverType.Bh2,
    };

    public static readonly IReadOnlyDictionary<string, InterpolationType> InterpolationTypes = new Dictionary<string, InterpolationType>
    {
        ["linear"] = InterpolationType.Linear,
        ["log_linear"] = InterpolationType.LogLinear,
    };

    public static readonly IReadOnlyDictionary<string, TimestepType> TimestepTypes = new Dictionary<string, TimestepType>
    {
        ["discrete"] = TimestepType.Discrete,
        ["continuous"] = TimestepType.Continuous,
    };
}
