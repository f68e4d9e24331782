namespace LocalDiffusion.Schedulers;

/// <summary>The error of sampling before <see cref="IScheduler.SetTimesteps"/>.</summary>
internal static class TimestepsNotSet
{
    public static InvalidOperationException Error(string scheduler) =>
        new($"{scheduler}: call SetTimesteps before reading timesteps or stepping.");
}
