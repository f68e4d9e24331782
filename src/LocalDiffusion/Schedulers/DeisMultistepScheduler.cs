using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// DEIS (Zhang and Chen 2023, diffusion exponential integrator sampler), matching diffusers'
/// <c>DEISMultistepScheduler</c>: the noise prediction ε is extrapolated by Lagrange polynomials in ρ = σ/α over the
/// last <c>solver_order</c> steps and integrated exactly in log ρ ("logrho"); order 1 is DDIM.
/// </summary>
public sealed class DeisMultistepScheduler : IScheduler, ISigmaSchedule
{
    private readonly NoiseSchedule _schedule;
    private readonly int _solverOrder;
    private readonly PredictionType _prediction;
    private readonly bool _lowerOrderFinal;
    private readonly bool _karras;
    private readonly double? _sigmaMin;
    private readonly double? _sigmaMax;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly ModelOutputHistory _modelOutputs;
    private float[]? _sigmas;
    private float[] _timesteps = [];
    private int _lowerOrderNums;
    private int _nextStep;

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>DEISMultistepScheduler</c> defaults (linear 0.0001→0.02,
    /// order 2, lower_order_final true, linspace spacing). DPM-Solver/UniPC algorithm and solver types become deis/logrho, as in diffusers.
    /// </summary>
    /// <exception cref="ArgumentException">solver_order is above 3.</exception>
    /// <exception cref="NotSupportedException">thresholding, or use_exponential_sigmas/use_beta_sigmas (diffusers v0.31's DEIS fails on both).</exception>
    public DeisMultistepScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        const string name = nameof(DeisMultistepScheduler);
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: false, finiteTerminalSigma: false);
        _solverOrder = config.SolverOrder ?? 2;
        _modelOutputs = new ModelOutputHistory(_solverOrder);
        ConfigGuards.CheckSolverOrder(_solverOrder, name);
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _lowerOrderFinal = config.LowerOrderFinal ?? true;
        var ramp = SigmaRampOption.FromConfig(config, name);
        if (ramp is SigmaRamp.Exponential or SigmaRamp.Beta)
            throw new NotSupportedException($"{name}: use_exponential_sigmas and use_beta_sigmas are not supported (diffusers v0.31 fails on them).");
        _karras = ramp == SigmaRamp.Karras;
        _sigmaMin = config.SigmaMin;
        _sigmaMax = config.SigmaMax;
        _spacing = config.TimestepSpacing ?? TimestepSpacing.Linspace;
        _stepsOffset = config.StepsOffset ?? 0;
        ConfigGuards.RejectThresholding(config, name);
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _sigmas is null ? throw TimestepsNotSet.Error(nameof(DeisMultistepScheduler)) : _timesteps;

    /// <inheritdoc/>
    public IReadOnlyList<float> Sigmas => Run;

    /// <inheritdoc/>
    public float InitNoiseSigma => 1f;

    private float[] Run => _sigmas ?? throw TimestepsNotSet.Error(nameof(DeisMultistepScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        // DEIS always ends at a positive sigma: the ramp's last one repeated, else the schedule's smallest.
        (_sigmas, _timesteps) = SolverSchedule.Create(
            _schedule, _spacing, _schedule.TrainTimesteps, inferenceSteps, _stepsOffset,
            _karras ? SigmaRamp.Karras : SigmaRamp.None, _sigmaMin, _sigmaMax,
            (sigmas, trainingSigmas) => _karras ? (float)sigmas[^1] : trainingSigmas[0]);
        _modelOutputs.Clear();
        _lowerOrderNums = 0;
        _nextStep = 0;
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    public void SetBeginIndex(int beginIndex) => _nextStep = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(DeisMultistepScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(DeisMultistepScheduler), nameof(stepIndex));
        NoiseAdding.Solver(original, noise, Run[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var sigmas = Run;
        StepOrder.Check(stepIndex, ref _nextStep, nameof(DeisMultistepScheduler));
        var steps = _timesteps.Length;
        var lowerOrderFinal = stepIndex == steps - 1 && _lowerOrderFinal && steps < 15;
        var lowerOrderSecond = stepIndex == steps - 2 && _lowerOrderFinal && steps < 15;

        // diffusers goes through x₀ even for ε-prediction: ε = (x − α·x₀)/σ_t, in float32.
        var sigma = sigmas[stepIndex];
        var (alpha, sigmaT) = DpmSolverUpdate.AlphaSigma(sigma);
        var epsilon = _modelOutputs.Rent(sample.Length);
        SolverModelOutput.Convert(_prediction, dataPrediction: true, modelOutput, sample, sigma, epsilon);
        for (var k = 0; k < epsilon.Length; k++)
            epsilon[k] = (sample[k] - alpha * epsilon[k]) / sigmaT;
        _modelOutputs.Add(epsilon);

        if (_solverOrder == 1 || _lowerOrderNums < 1 || lowerOrderFinal)
            // DDIM, x_t = (α_t/α_s)·x − σ_t(eʰ − 1)·ε: DPM-Solver-1 on ε.
            new DpmSolverUpdate(DpmSolverAlgorithmType.DpmSolver, DpmSolverType.Midpoint, sigmas, stepIndex).FirstOrder(epsilon, sample, default);
        else if (_solverOrder == 2 || _lowerOrderNums < 2 || lowerOrderSecond)
            SecondOrder(stepIndex, sample);
        else
            ThirdOrder(stepIndex, sample);

        if (_lowerOrderNums < _solverOrder)
            _lowerOrderNums++;
    }

    /// <summary>x_t = α_t·(x/α_s0 + c₁·ε₀ + c₂·ε₁), cₖ the integrals over [ρ_s0, ρ_t] of the Lagrange basis through ρ_s0, ρ_s1.</summary>
    private void SecondOrder(int step, Span<float> sample)
    {
        var (alphaT, rhoT) = Rho(step + 1);
        var (alphaS0, rhoS0) = Rho(step);
        var (_, rhoS1) = Rho(step - 1);
        float[] m0 = _modelOutputs[^1], m1 = _modelOutputs[^2];
        var c1 = Integral2(rhoT, rhoS0, rhoS1) - Integral2(rhoS0, rhoS0, rhoS1);
        var c2 = Integral2(rhoT, rhoS1, rhoS0) - Integral2(rhoS0, rhoS1, rhoS0);
        for (var k = 0; k < sample.Length; k++)
            sample[k] = alphaT * (sample[k] / alphaS0 + c1 * m0[k] + c2 * m1[k]);
    }

    /// <summary>The third-order form of <see cref="SecondOrder"/> through ρ_s0, ρ_s1, ρ_s2.</summary>
    private void ThirdOrder(int step, Span<float> sample)
    {
        var (alphaT, rhoT) = Rho(step + 1);
        var (alphaS0, rhoS0) = Rho(step);
        var (_, rhoS1) = Rho(step - 1);
        var (_, rhoS2) = Rho(step - 2);
        float[] m0 = _modelOutputs[^1], m1 = _modelOutputs[^2], m2 = _modelOutputs[^3];
        var c1 = Integral3(rhoT, rhoS0, rhoS1, rhoS2) - Integral3(rhoS0, rhoS0, rhoS1, rhoS2);
        var c2 = Integral3(rhoT, rhoS1, rhoS2, rhoS0) - Integral3(rhoS0, rhoS1, rhoS2, rhoS0);
        var c3 = Integral3(rhoT, rhoS2, rhoS0, rhoS1) - Integral3(rhoS0, rhoS2, rhoS0, rhoS1);
        for (var k = 0; k < sample.Length; k++)
            sample[k] = alphaT * (sample[k] / alphaS0 + c1 * m0[k] + c2 * m1[k] + c3 * m2[k]);
    }

    /// <summary>α and ρ = σ_t/α at step <paramref name="index"/>.</summary>
    private (float Alpha, float Rho) Rho(int index)
    {
        var (alpha, sigma) = DpmSolverUpdate.AlphaSigma(Run[index]);
        return (alpha, sigma / alpha);
    }

    /// <summary>Antiderivative in t of the first-order Lagrange basis through b (value 1) and c, in log ρ (diffusers' ind_fn).</summary>
    private static float Integral2(float t, float b, float c)
    {
        float logT = MathF.Log(t), logB = MathF.Log(b), logC = MathF.Log(c);
        return t * (-logC + logT - 1f) / (logB - logC);
    }

    /// <summary>Antiderivative of the second-order Lagrange basis through b (value 1), c and d (diffusers' ind_fn).</summary>
    private static float Integral3(float t, float b, float c, float d)
    {
        float logT = MathF.Log(t), logB = MathF.Log(b), logC = MathF.Log(c), logD = MathF.Log(d);
        var numerator = t * (logC * (logD - logT + 1f) - logD * logT + logD + logT * logT - 2f * logT + 2f);
        return numerator / ((logB - logC) * (logB - logD));
    }
}
