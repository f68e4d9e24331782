namespace LocalDiffusion.Schedulers;

/// <summary>
/// The inference timesteps of diffusers' three spacings, in descending order and before any class-specific rounding
/// or casting (the classes differ there: Euler keeps fractional linspace timesteps, DDIM rounds them).
/// </summary>
public static class TimestepSpacings
{
    /// <summary>The timesteps of <paramref name="spacing"/>; linspace is not rounded.</summary>
    public static double[] Create(TimestepSpacing spacing, int trainTimesteps, int inferenceSteps, int stepsOffset) => spacing switch
    {
        TimestepSpacing.Leading => Leading(trainTimesteps, inferenceSteps, stepsOffset),
        TimestepSpacing.Trailing => Trailing(trainTimesteps, inferenceSteps),
        TimestepSpacing.Linspace => Linspace(trainTimesteps, inferenceSteps),
        _ => throw new ArgumentOutOfRangeException(nameof(spacing), spacing, "Unknown timestep spacing."),
    };

    /// <summary>leading: (n−1−i)·⌊T/n⌋ + steps_offset.</summary>
    public static double[] Leading(int trainTimesteps, int inferenceSteps, int stepsOffset)
    {
        var ratio = trainTimesteps / inferenceSteps;
        var timesteps = new double[inferenceSteps];
        for (var i = 0; i < inferenceSteps; i++)
            timesteps[i] = (double)(inferenceSteps - 1 - i) * ratio + stepsOffset;
        return timesteps;
    }

    /// <summary>trailing: round(arange(T, 0, −T/n)) − 1 (numpy's arange and round-half-to-even).</summary>
    public static double[] Trailing(int trainTimesteps, int inferenceSteps)
    {
        var timesteps = NumpyRanges.Arange(trainTimesteps, 0, -(double)trainTimesteps / inferenceSteps);
        for (var i = 0; i < timesteps.Length; i++)
            timesteps[i] = Math.Round(timesteps[i], MidpointRounding.ToEven) - 1;
        return timesteps;
    }

    /// <summary>linspace: np.linspace(0, T−1, n) reversed.</summary>
    public static double[] Linspace(int trainTimesteps, int inferenceSteps)
    {
        var timesteps = NumpyRanges.Linspace(0, trainTimesteps - 1, inferenceSteps);
        Array.Reverse(timesteps);
        return timesteps;
    }

    /// <summary>Checks the step count the way every scheduler needs it: at least 1, at most T.</summary>
    public static void Validate(int inferenceSteps, int trainTimesteps)
    {
        if (inferenceSteps < 1 || inferenceSteps > trainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(inferenceSteps), inferenceSteps,
                $"The number of inference steps must be between 1 and num_train_timesteps ({trainTimesteps}).");
    }
}
