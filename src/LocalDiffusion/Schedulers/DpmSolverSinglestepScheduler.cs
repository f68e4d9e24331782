using LocalDiffusion.Randomness;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Singlestep DPM-Solver / DPM-Solver++ (Lu et al. 2022), matching diffusers' <c>DPMSolverSinglestepScheduler</c>:
/// steps are grouped by the order list (1, 2, 1, 2, … for order 2); a group of order k starts at a sample x_s and
/// every evaluation inside it re-solves from x_s with the outputs gathered so far, so the group's last update is a
/// k-th order singlestep solve. Defaults: dpmsolver++, order 2, midpoint — "DPM++ 2S" (deterministic; AUTOMATIC1111's
/// "DPM++ 2S a" is an ancestral sampler this class is not); with sde-dpmsolver++ it draws noise each step ("DPM++ SDE" here: k-diffusion's DPM++ SDE samples
/// a Brownian tree, which diffusers' torchsde-based <c>DPMSolverSDEScheduler</c> reproduces and this class does not).
/// </summary>
public sealed class DpmSolverSinglestepScheduler : IScheduler, ISigmaSchedule
{
    private readonly NoiseSchedule _schedule;
    private readonly int _solverOrder;
    private readonly PredictionType _prediction;
    private readonly DpmSolverAlgorithmType _algorithm;
    private readonly DpmSolverType _solverType;
    private readonly bool _karras;
    private readonly double? _sigmaMin;
    private readonly double? _sigmaMax;
    private readonly FinalSigmasType _finalSigma;
    private readonly double _lambdaMinClipped;
    private readonly ModelOutputHistory _modelOutputs;
    private readonly NoiseBuffer _noise = new();
    private bool _lowerOrderFinal;
    private float[]? _sigmas;
    private float[] _timesteps = [];
    private int[] _orders = [];
    private float[] _groupStart = [];
    private readonly SampleCopy _groupStartCopy = new();
    private int _nextStep;

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>DPMSolverSinglestepScheduler</c> defaults (linear
    /// 0.0001→0.02, order 2, dpmsolver++, midpoint, lower_order_final false, final sigma zero). It always spaces
    /// timesteps like linspace (the class has no timestep_spacing). DEIS/UniPC algorithm and solver types map to
    /// dpmsolver++/midpoint, as in diffusers.
    /// </summary>
    /// <exception cref="ArgumentException">solver_order above 3, sde-dpmsolver++ with order 3, or dpmsolver with final sigma zero.</exception>
    /// <exception cref="NotSupportedException">
    /// sde-dpmsolver, thresholding, learned variance, or use_exponential_sigmas/use_beta_sigmas (diffusers v0.31 builds
    /// those ramps from unflipped sigmas, ascending).
    /// </exception>
    public DpmSolverSinglestepScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        const string name = nameof(DpmSolverSinglestepScheduler);
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: false, finiteTerminalSigma: false);
        _solverOrder = config.SolverOrder ?? 2;
        _modelOutputs = new ModelOutputHistory(_solverOrder);
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _algorithm = DpmSolverOptions.Algorithm(config);
        _solverType = DpmSolverOptions.SolverType(config);
        _lowerOrderFinal = config.LowerOrderFinal ?? false;
        var ramp = SigmaRampOption.FromConfig(config, name);
        if (ramp is SigmaRamp.Exponential or SigmaRamp.Beta)
            throw new NotSupportedException($"{name}: use_exponential_sigmas and use_beta_sigmas are not supported (diffusers v0.31 builds them ascending).");
        _karras = ramp == SigmaRamp.Karras;
        _sigmaMin = config.SigmaMin;
        _sigmaMax = config.SigmaMax;
        _finalSigma = config.FinalSigmasType ?? FinalSigmasType.Zero;
        _lambdaMinClipped = config.LambdaMinClipped ?? double.NegativeInfinity;

        ConfigGuards.CheckSolverOrder(_solverOrder, name);
        if (_algorithm == DpmSolverAlgorithmType.SdeDpmSolver)
            throw new NotSupportedException($"{name}: algorithm_type sde-dpmsolver is not supported (diffusers' class rejects it too).");
        if (IsSde && _solverOrder == 3)
            throw new InvalidRequestException(nameof(config), null, null, called => $"{name}: sde-dpmsolver++ supports solver_order 1 or 2, not 3.");
        if (_algorithm == DpmSolverAlgorithmType.DpmSolver && _finalSigma == FinalSigmasType.Zero)
            throw new InvalidRequestException(nameof(config), null, null, $"{name}: final_sigmas_type \"zero\" is not supported with algorithm_type dpmsolver; use \"sigma_min\".");
        ConfigGuards.RejectThresholding(config, name);
        ConfigGuards.RejectLearnedVariance(config, name);
    }

    private bool IsSde => _algorithm == DpmSolverAlgorithmType.SdeDpmSolverPlusPlus;

    private bool IsDataPrediction => _algorithm != DpmSolverAlgorithmType.DpmSolver;

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _sigmas is null ? throw TimestepsNotSet.Error(nameof(DpmSolverSinglestepScheduler)) : _timesteps;

    /// <inheritdoc/>
    public IReadOnlyList<float> Sigmas => Run;

    /// <inheritdoc/>
    public float InitNoiseSigma => 1f;

    private float[] Run => _sigmas ?? throw TimestepsNotSet.Error(nameof(DpmSolverSinglestepScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        var lastTimestep = _schedule.TrainTimesteps - SolverSchedule.ClippedTimesteps(_schedule, _lambdaMinClipped);
        (_sigmas, _timesteps) = SolverSchedule.Create(
            _schedule, TimestepSpacing.Linspace, lastTimestep, inferenceSteps, 0,
            _karras ? SigmaRamp.Karras : SigmaRamp.None, _sigmaMin, _sigmaMax,
            (_, trainingSigmas) => _finalSigma == FinalSigmasType.SigmaMin ? trainingSigmas[0] : 0f);

        // diffusers switches lower_order_final on for good (it rewrites its config) when the steps do not divide into
        // whole groups, or when the last sigma is zero.
        if (!_lowerOrderFinal && (inferenceSteps % _solverOrder != 0 || _finalSigma == FinalSigmasType.Zero))
            _lowerOrderFinal = true;
        _orders = OrderList(inferenceSteps);
        _modelOutputs.Clear();
        _nextStep = 0;
    }

    /// <summary>The solver order of each step (diffusers' <c>get_order_list</c>).</summary>
    private int[] OrderList(int steps)
    {
        static IEnumerable<int> Cycle(int order, int count) => Enumerable.Repeat(Enumerable.Range(1, order), count).SelectMany(x => x);
        if (!_lowerOrderFinal || _solverOrder == 1)
            return [.. Cycle(_solverOrder, steps / _solverOrder)];
        return (_solverOrder, steps % _solverOrder) switch
        {
            (3, 0) => [.. Cycle(3, steps / 3 - 1), 1, 2, 1],
            (3, 1) => [.. Cycle(3, steps / 3), 1],
            (3, _) => [.. Cycle(3, steps / 3), 1, 2],
            (_, 0) => [.. Cycle(2, steps / 2 - 1), 1, 1],
            _ => [.. Cycle(2, steps / 2), 1],
        };
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    public void SetBeginIndex(int beginIndex) => _nextStep = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(DpmSolverSinglestepScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(DpmSolverSinglestepScheduler), nameof(stepIndex));
        NoiseAdding.Solver(original, noise, Run[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var sigmas = Run;
        StepOrder.Check(stepIndex, ref _nextStep, nameof(DpmSolverSinglestepScheduler));
        var converted = _modelOutputs.Rent(sample.Length);
        SolverModelOutput.Convert(_prediction, IsDataPrediction, modelOutput, sample, sigmas[stepIndex], converted);
        _modelOutputs.Add(converted);

        Span<float> noise = default;
        if (IsSde)
        {
            noise = _noise.Draw(generator, sample.Length);
        }

        var order = Math.Min(_orders[stepIndex], _modelOutputs.Count);
        if (order == 1)
            _groupStart = _groupStartCopy.Keep(sample);
        _groupStart.CopyTo(sample);
        switch (order)
        {
            case 1:
                new DpmSolverUpdate(_algorithm, _solverType, sigmas, stepIndex).FirstOrder(converted, sample, noise);
                break;
            case 2:
                SecondOrder(stepIndex, sample, noise);
                break;
            default:
                ThirdOrder(stepIndex, sample);
                break;
        }
    }

    private static float Lambda(float sigma)
    {
        var (alpha, sigmaT) = DpmSolverUpdate.AlphaSigma(sigma);
        return MathF.Log(alpha) - MathF.Log(sigmaT);
    }

    /// <summary>Singlestep DPM-Solver-2 from the group start at σ_s1 to σ_t, through the output at σ_s0.</summary>
    private void SecondOrder(int step, Span<float> sample, ReadOnlySpan<float> noise)
    {
        var sigmas = Run;
        var (alphaT, sigmaT) = DpmSolverUpdate.AlphaSigma(sigmas[step + 1]);
        var (alphaS1, sigmaS1) = DpmSolverUpdate.AlphaSigma(sigmas[step - 1]);
        var lambdaT = Lambda(sigmas[step + 1]);
        var lambdaS0 = Lambda(sigmas[step]);
        var lambdaS1 = Lambda(sigmas[step - 1]);
        float h = lambdaT - lambdaS1, h0 = lambdaS0 - lambdaS1;
        var d1Scale = 1f / (h0 / h);
        // x_t = a·x_s1 + b·D0 + c·D1 (+ n·noise) with D0 = m1, D1 = (m0 − m1)/r0.
        var (a, b, c, n) = DpmSolverUpdate.SecondOrderCoefficients(_algorithm, _solverType, alphaT, sigmaT, alphaS1, sigmaS1, h);

        float[] m0 = _modelOutputs[^1], m1 = _modelOutputs[^2];
        for (var k = 0; k < sample.Length; k++)
        {
            var d1 = d1Scale * (m0[k] - m1[k]);
            var x = a * sample[k] + b * m1[k] + c * d1;
            sample[k] = noise.IsEmpty ? x : x + n * noise[k];
        }
    }

    /// <summary>Singlestep DPM-Solver-3 from the group start at σ_s2 to σ_t, through the outputs at σ_s1 and σ_s0 (ODE variants).</summary>
    private void ThirdOrder(int step, Span<float> sample)
    {
        var sigmas = Run;
        var (alphaT, sigmaT) = DpmSolverUpdate.AlphaSigma(sigmas[step + 1]);
        var (alphaS2, sigmaS2) = DpmSolverUpdate.AlphaSigma(sigmas[step - 2]);
        var lambdaT = Lambda(sigmas[step + 1]);
        var lambdaS0 = Lambda(sigmas[step]);
        var lambdaS1 = Lambda(sigmas[step - 1]);
        var lambdaS2 = Lambda(sigmas[step - 2]);
        float h = lambdaT - lambdaS2, h0 = lambdaS0 - lambdaS2, h1 = lambdaS1 - lambdaS2;
        float r0 = h0 / h, r1 = h1 / h;
        float scale10 = 1f / r1, scale11 = 1f / r0, difference = r0 - r1;
        var heun = _solverType == DpmSolverType.Heun;

        // x_t = a·x_s2 + b·D0 + c·(D1 or D1_1) + d·D2; signs folded into the coefficients.
        float a, b, c, d;
        if (_algorithm == DpmSolverAlgorithmType.DpmSolverPlusPlus)
        {
            var e = MathF.Exp(-h) - 1f;
            (a, b, c) = (sigmaT / sigmaS2, -(alphaT * e), alphaT * (e / h + 1f));
            d = heun ? -(alphaT * ((e + h) / (h * h) - 0.5f)) : 0f;
        }
        else
        {
            var e = MathF.Exp(h) - 1f;
            (a, b, c) = (alphaT / alphaS2, -(sigmaT * e), -(sigmaT * (e / h - 1f)));
            d = heun ? -(sigmaT * ((e - h) / (h * h) - 0.5f)) : 0f;
        }

        float[] m0 = _modelOutputs[^1], m1 = _modelOutputs[^2], m2 = _modelOutputs[^3];
        for (var k = 0; k < sample.Length; k++)
        {
            var d10 = scale10 * (m1[k] - m2[k]);
            var d11 = scale11 * (m0[k] - m2[k]);
            var x = a * sample[k] + b * m2[k];
            if (heun)
            {
                var d1 = (r0 * d10 - r1 * d11) / difference;
                var d2 = 2f * (d11 - d10) / difference;
                sample[k] = x + c * d1 + d * d2;
            }
            else
                sample[k] = x + c * d11;
        }
    }
}
