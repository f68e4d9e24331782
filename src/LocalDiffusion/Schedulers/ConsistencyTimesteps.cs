using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// The timesteps of the consistency-distilled samplers (LCM, TCD): the distillation schedule k·j − 1 for
/// j = 1..original_inference_steps with k = ⌊T/original_inference_steps⌋, reversed, sampled at ⌊i·len/n⌋.
/// </summary>
internal static class ConsistencyTimesteps
{
    /// <summary>BetaDefaults of LCMScheduler and TCDScheduler in diffusers: 1000 steps, scaled_linear 0.00085 → 0.012.</summary>
    public static BetaDefaults Defaults { get; } = new(1000, 0.00085, 0.012, BetaSchedule.ScaledLinear);

    /// <exception cref="ArgumentOutOfRangeException">n is not between 1 and original_inference_steps, or that exceeds T.</exception>
    public static int[] Create(int trainTimesteps, int originalSteps, int inferenceSteps, string scheduler)
    {
        if (originalSteps > trainTimesteps)
            throw new InvalidRequestException(nameof(originalSteps), originalSteps, null, $"{scheduler}: original_inference_steps must not exceed num_train_timesteps ({trainTimesteps}).");
        if (inferenceSteps < 1 || inferenceSteps > originalSteps)
            throw new InvalidRequestException(nameof(inferenceSteps), inferenceSteps, null, $"{scheduler}: the number of inference steps must be between 1 and original_inference_steps ({originalSteps}).");
        var k = trainTimesteps / originalSteps;
        var timesteps = new int[inferenceSteps];
        for (var i = 0; i < inferenceSteps; i++)
        {
            // np.floor(np.linspace(0, len, n, endpoint=False)) into the reversed schedule.
            var index = (int)Math.Floor(i * ((double)originalSteps / inferenceSteps));
            timesteps[i] = (originalSteps - index) * k - 1;
        }
        return timesteps;
    }
}
