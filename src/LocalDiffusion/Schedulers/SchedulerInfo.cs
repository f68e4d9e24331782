namespace LocalDiffusion.Schedulers;

/// <summary>What the registry knows about one scheduler choice.</summary>
/// <param name="Id">Short id, e.g. <c>dpmpp_2m_karras</c>.</param>
/// <param name="DisplayName">The name users know it by (AUTOMATIC1111's where it has one), e.g. <c>DPM++ 2M Karras</c>.</param>
/// <param name="DiffusersClass">The diffusers class it reproduces, e.g. <c>DPMSolverMultistepScheduler</c>.</param>
/// <param name="Aliases">Further names it answers to (matched ignoring case, spaces and punctuation other than '+').</param>
/// <param name="IsStochastic">Whether it draws fresh noise from the generator during sampling.</param>
public sealed record SchedulerInfo(string Id, string DisplayName, string DiffusersClass, IReadOnlyList<string> Aliases, bool IsStochastic);
