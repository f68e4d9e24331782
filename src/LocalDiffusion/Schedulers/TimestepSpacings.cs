using LocalDiffusion.Errors;

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
        _ => throw new InvalidRequestException(nameof(spacing), spacing, null, "Unknown timestep spacing."),
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
            throw new InvalidRequestException(nameof(inferenceSteps), inferenceSteps, null, $"The number of inference steps must be between 1 and num_train_timesteps ({trainTimesteps}).");
    }

    /// <summary>
    /// The spaced timesteps rounded half to even, for the schedulers that index the training schedule with them (DDIM,
    /// DDPM, PNDM). Leading spacing plus steps_offset can reach T (1000 steps with offset 1): refused, naming the
    /// largest step count that stays below T. diffusers v0.31 fails there with an IndexError.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A timestep would be T or more.</exception>
    public static int[] Rounded(TimestepSpacing spacing, int trainTimesteps, int inferenceSteps, int stepsOffset)
    {
        var timesteps = Round(Create(spacing, trainTimesteps, inferenceSteps, stepsOffset));
        var largest = timesteps.Max();
        if (largest < trainTimesteps) return timesteps;
        var fits = inferenceSteps - 1;
        while (fits > 0 && Round(Create(spacing, trainTimesteps, fits, stepsOffset)).Max() >= trainTimesteps) fits--;
        throw new InvalidRequestException(nameof(inferenceSteps), inferenceSteps, null, called => $"{inferenceSteps} steps with {spacing.ToString().ToLowerInvariant()} spacing and steps_offset {stepsOffset} reach timestep {largest}, " +
            $"past the last training timestep {trainTimesteps - 1}; at most {fits} steps work with this scheduler config.");
    }

    /// <summary>
    /// Refuses a step count whose timesteps repeat, for the solvers that divide by the step between two timesteps
    /// (DPM-Solver, UniPC, DEIS): at 1000 steps their n + 1 rounded points collide. diffusers v0.31 repeats them the same
    /// way and returns NaN (linspace: from step 500; leading: from step 1). The message names the largest step count
    /// whose points are distinct.
    /// </summary>
    /// <param name="points">The run's sigmas (or timesteps) in the scheduler's precision.</param>
    /// <param name="inferenceSteps">n.</param>
    /// <param name="pointsFor">The same points for another step count.</param>
    /// <exception cref="ArgumentOutOfRangeException">Two points are equal.</exception>
    public static void RequireDistinct(IReadOnlyList<float> points, int inferenceSteps, Func<int, IReadOnlyList<float>> pointsFor)
    {
        if (AllDistinct(points)) return;
        var fits = inferenceSteps - 1;
        while (fits > 1 && !AllDistinct(pointsFor(fits))) fits--;
        throw new InvalidRequestException(nameof(inferenceSteps), inferenceSteps, null, called => $"at {inferenceSteps} steps this scheduler's rounded timesteps repeat, and it would divide by a zero step; " +
            $"at most {fits} steps work with this scheduler config.");
    }

    private static bool AllDistinct(IReadOnlyList<float> timesteps)
    {
        var seen = new HashSet<float>();
        foreach (var t in timesteps)
            if (!seen.Add(t)) return false;
        return true;
    }

    private static int[] Round(double[] timesteps) =>
        Array.ConvertAll(timesteps, t => (int)Math.Round(t, MidpointRounding.ToEven));
}
