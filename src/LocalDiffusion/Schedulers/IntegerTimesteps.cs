namespace LocalDiffusion.Schedulers;

/// <summary>
/// The integer timesteps of DDIM and DDPM (spaced, then rounded half to even) and diffusers' step back from each:
/// t − ⌊T/n⌋ whatever the spacing.
/// </summary>
internal sealed class IntegerTimesteps
{
    private readonly int[] _timesteps;
    private readonly int _stepRatio;

    private IntegerTimesteps(int[] timesteps, int stepRatio)
    {
        _timesteps = timesteps;
        _stepRatio = stepRatio;
        Values = timesteps.Select(t => (float)t).ToArray();
    }

    /// <summary>The timesteps as the scheduler reports them.</summary>
    public IReadOnlyList<float> Values { get; }

    /// <summary>The timestep of step <paramref name="stepIndex"/>.</summary>
    public int this[int stepIndex] => _timesteps[stepIndex];

    /// <summary>Validates <paramref name="inferenceSteps"/> and builds the rounded timesteps of <paramref name="spacing"/>.</summary>
    public static IntegerTimesteps Create(TimestepSpacing spacing, int trainTimesteps, int inferenceSteps, int stepsOffset)
    {
        TimestepSpacings.Validate(inferenceSteps, trainTimesteps);
        var timesteps = TimestepSpacings.Rounded(spacing, trainTimesteps, inferenceSteps, stepsOffset);
        return new IntegerTimesteps(timesteps, trainTimesteps / inferenceSteps);
    }

    /// <summary>The timestep a step from <paramref name="timestep"/> lands on; negative past the end of the schedule.</summary>
    public int Previous(int timestep) => timestep - _stepRatio;
}
