namespace LocalDiffusion.Schedulers;

/// <summary>The schedulers LocalDiffusion ships, with their names; <see cref="SchedulerRegistry"/> starts from this list.</summary>
internal static class BuiltInSchedulers
{
    public static IReadOnlyList<(SchedulerInfo Info, Func<SchedulerConfig, IScheduler> Factory)> All { get; } =
    [
        (new SchedulerInfo("euler", "Euler", "EulerDiscreteScheduler", ["k_euler"], IsStochastic: false),
            config => new EulerDiscreteScheduler(config)),
    ];
}
