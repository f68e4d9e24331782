namespace LocalDiffusion.Schedulers;

/// <summary>
/// What is wrong with a scheduler config, without its name: the reader throws it, and <see cref="SchedulerConfig"/>
/// wraps it in the <see cref="InvalidDataException"/> its API promises (the message naming the source first), so a
/// loader that names the file itself takes <see cref="Problem"/> from the inner exception instead of cutting a message.
/// </summary>
internal sealed class SchedulerConfigProblem(string problem, Exception? inner = null) : Exception(problem, inner)
{
    /// <summary>E.g. <c>key "beta_start" is 2; expected a number between 0 and 1 (SD: 0.00085).</c></summary>
    public string Problem => Message;

    /// <summary>The problem of <paramref name="e"/> when a scheduler config's reader raised it; else its message.</summary>
    public static string Of(Exception e) => e.InnerException is SchedulerConfigProblem p ? p.Problem : e.Message;
}
