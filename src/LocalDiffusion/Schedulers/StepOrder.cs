namespace LocalDiffusion.Schedulers;

/// <summary>Guards the multistep schedulers, whose history is only right when steps come once each, in order.</summary>
internal static class StepOrder
{
    public static void Check(int stepIndex, ref int nextStep, string scheduler)
    {
        if (stepIndex != nextStep)
            throw new InvalidOperationException(
                $"{scheduler}: Step({stepIndex}) called when step {nextStep} was due; call Step once per timestep, in order, after SetTimesteps.");
        nextStep++;
    }
}
