using LocalDiffusion.Randomness;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// AUTOMATIC1111's "DPM++ 2S a": k-diffusion's <c>sample_dpmpp_2s_ancestral</c> (η = 1, s_noise = 1), which diffusers does
/// not have. Each step from σᵢ goes down to σ_down = √(σᵢ₊₁² − σ_up²), σ_up = min(σᵢ₊₁, √(σᵢ₊₁²(σᵢ² − σᵢ₊₁²)/σᵢ²)),
/// with a DPM-Solver++(2S) step (a model evaluation at the log-midpoint σ_s = √(σᵢ·σ_down)), then adds σ_up·z with z from
/// the generator. The last step (to σ = 0) is plain Euler. So n steps take 2n − 1 evaluations, listed in
/// <see cref="Timesteps"/> as tᵢ, t(σ_s,i), …; the sigma schedule is diffusers' Euler-family one for the model's config
/// (timestep_spacing, steps_offset; use_karras_sigmas for "DPM++ 2S a Karras").
/// </summary>
public sealed class DpmPlusPlus2SAncestralScheduler : IScheduler, ISigmaSchedule
{
    private readonly NoiseSchedule _schedule;
    private readonly PredictionType _prediction;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly SigmaRamp _ramp;
    private readonly double? _sigmaMin;
    private readonly double? _sigmaMax;
    private readonly ScratchBuffer _denoised = new();
    private readonly ScratchBuffer _stepStart = new();
    private readonly NoiseBuffer _noise = new();
    private DiscreteSigmaSchedule? _run;
    private float[] _evaluationSigmas = [];
    private float[] _timesteps = [];
    private int[] _stepOf = [];
    private int _nextStep;

    /// <summary>Builds the scheduler; absent keys take diffusers' Euler defaults (linear 0.0001→0.02, linspace spacing).</summary>
    public DpmPlusPlus2SAncestralScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: false, finiteTerminalSigma: false);
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _spacing = config.TimestepSpacing ?? TimestepSpacing.Linspace;
        _stepsOffset = config.StepsOffset ?? 0;
        _ramp = SigmaRampOption.FromConfig(config, nameof(DpmPlusPlus2SAncestralScheduler));
        _sigmaMin = config.SigmaMin;
        _sigmaMax = config.SigmaMax;
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _run is null ? throw TimestepsNotSet.Error(nameof(DpmPlusPlus2SAncestralScheduler)) : _timesteps;

    /// <summary>σ at each evaluation (σ₀, σ_s,0, σ₁, σ_s,1, …, σₙ₋₁), then 0.</summary>
    public IReadOnlyList<float> Sigmas => _run is null ? throw TimestepsNotSet.Error(nameof(DpmPlusPlus2SAncestralScheduler)) : _evaluationSigmas;

    /// <inheritdoc/>
    public float InitNoiseSigma => Run.InitNoiseSigma(_spacing);

    /// <inheritdoc/>
    public int Order => 2;

    private DiscreteSigmaSchedule Run => _run ?? throw TimestepsNotSet.Error(nameof(DpmPlusPlus2SAncestralScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        var run = DiscreteSigmaSchedule.Create(_schedule, _spacing, _stepsOffset, inferenceSteps, _ramp, _sigmaMin, _sigmaMax, FinalSigmasType.Zero);
        var logTrainingSigmas = SigmaSchedules.Log(_schedule.Sigmas());
        var sigmas = new List<float>();
        var timesteps = new List<float>();
        var stepOf = new List<int>();
        for (var i = 0; i < inferenceSteps; i++)
        {
            sigmas.Add(run.Sigmas[i]);
            timesteps.Add(run.Timesteps[i]);
            stepOf.Add(i);
            var (down, _) = AncestralStep(run.Sigmas[i], run.Sigmas[i + 1]);
            if (down == 0f)
                continue;
            var midpoint = Midpoint(run.Sigmas[i], down);
            sigmas.Add(midpoint);
            timesteps.Add((float)SigmaSchedules.SigmaToTimestep(midpoint, logTrainingSigmas));
            stepOf.Add(i);
        }
        sigmas.Add(0f);
        _run = run;
        _evaluationSigmas = [.. sigmas];
        _timesteps = [.. timesteps];
        _stepOf = [.. stepOf];
        _nextStep = 0;
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) =>
        SigmaSpace.ScaleInput(sample, destination, Sigmas[stepIndex]);

    /// <inheritdoc/>
    public void SetBeginIndex(int beginIndex)
    {
        var index = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(DpmPlusPlus2SAncestralScheduler), nameof(beginIndex));
        if (index > 0 && _stepOf[index - 1] == _stepOf[index])
            throw new InvalidRequestException(nameof(beginIndex), beginIndex, null, $"{nameof(DpmPlusPlus2SAncestralScheduler)}: evaluation {beginIndex} is the midpoint of a step; begin at a step's first evaluation.");
        _nextStep = index;
    }

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(DpmPlusPlus2SAncestralScheduler), nameof(stepIndex));
        NoiseAdding.Sigma(original, noise, _evaluationSigmas[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var run = Run;
        StepOrder.Check(stepIndex, ref _nextStep, nameof(DpmPlusPlus2SAncestralScheduler));
        var step = _stepOf[stepIndex];
        float sigma = run.Sigmas[step], sigmaNext = run.Sigmas[step + 1];
        var (down, up) = AncestralStep(sigma, sigmaNext);
        var denoised = _denoised.Get(sample.Length);
        SigmaSpace.Denoise(_prediction, modelOutput, sample, _evaluationSigmas[stepIndex], denoised);
        var midpointEvaluation = stepIndex > 0 && _stepOf[stepIndex - 1] == step;

        if (down == 0f)
        {
            // Euler to σ_down = 0: x ← x + (x − x₀)/σ · (0 − σ).
            for (var k = 0; k < sample.Length; k++)
                sample[k] += (sample[k] - denoised[k]) / sigma * (down - sigma);
        }
        else
        {
            // DPM-Solver++(2S) in t = −ln σ, as k-diffusion computes it in float32.
            float t = -MathF.Log(sigma), tNext = -MathF.Log(down);
            var h = tNext - t;
            if (!midpointEvaluation)
            {
                var s = t + 0.5f * h;
                var ratio = MathF.Exp(-s) / MathF.Exp(-t);
                var expm1 = (float)(Math.Exp(-h * 0.5f) - 1);
                var start = _stepStart.Get(sample.Length);
                sample.CopyTo(start);
                for (var k = 0; k < sample.Length; k++)
                    sample[k] = ratio * sample[k] - expm1 * denoised[k];
                return; // the next evaluation is at the midpoint
            }
            var fullRatio = MathF.Exp(-tNext) / MathF.Exp(-t);
            var fullExpm1 = (float)(Math.Exp(-h) - 1);
            var from = _stepStart.Get(sample.Length);
            for (var k = 0; k < sample.Length; k++)
                sample[k] = fullRatio * from[k] - fullExpm1 * denoised[k];
        }

        if (sigmaNext > 0f)
        {
            var noise = _noise.Draw(generator, sample.Length);
            for (var k = 0; k < sample.Length; k++)
                sample[k] += noise[k] * up;
        }
    }

    // k-diffusion's get_ancestral_step with η = 1, in float32.
    private static (float Down, float Up) AncestralStep(float from, float to)
    {
        var up = MathF.Min(to, MathF.Sqrt(to * to * (from * from - to * to) / (from * from)));
        return (MathF.Sqrt(to * to - up * up), up);
    }

    // σ_s = exp(−(t + h/2)) with t = −ln σ, h = −ln σ_down − t, as the sampler computes it.
    private static float Midpoint(float sigma, float down)
    {
        float t = -MathF.Log(sigma), h = -MathF.Log(down) - t;
        return MathF.Exp(-(t + 0.5f * h));
    }
}
