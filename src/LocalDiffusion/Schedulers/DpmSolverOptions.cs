namespace LocalDiffusion.Schedulers;

/// <summary>
/// algorithm_type and solver_type as diffusers' two DPM-Solver classes read them: a DEIS or UniPC config loaded into
/// DPM-Solver runs as dpmsolver++ / midpoint.
/// </summary>
internal static class DpmSolverOptions
{
    /// <summary>algorithm_type, with absent or deis meaning dpmsolver++.</summary>
    public static DpmSolverAlgorithmType Algorithm(SchedulerConfig config) =>
        config.AlgorithmType is null or DpmSolverAlgorithmType.Deis ? DpmSolverAlgorithmType.DpmSolverPlusPlus : config.AlgorithmType.Value;

    /// <summary>solver_type, with anything but heun (absent, logrho, bh1, bh2) meaning midpoint.</summary>
    public static DpmSolverType SolverType(SchedulerConfig config) =>
        config.SolverType is DpmSolverType.Heun ? DpmSolverType.Heun : DpmSolverType.Midpoint;
}
