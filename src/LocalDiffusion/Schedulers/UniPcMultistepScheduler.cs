using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// UniPC (Zhao et al. 2023), matching diffusers' <c>UniPCMultistepScheduler</c>: each step first corrects the sample
/// the previous step predicted (UniC, using the new model output), then predicts the next sample (UniP) from the last
/// <c>solver_order</c> outputs, in λ = ln(α/σ) with the B(h) variant bh1 (B(h) = h) or bh2 (B(h) = eʰ − 1, the
/// default). Deterministic; one model evaluation per step.
/// </summary>
public sealed class UniPcMultistepScheduler : IScheduler, ISigmaSchedule
{
    private readonly NoiseSchedule _schedule;
    private readonly int _solverOrder;
    private readonly PredictionType _prediction;
    private readonly bool _predictX0;
    private readonly bool _bh1;
    private readonly bool _lowerOrderFinal;
    private readonly HashSet<int> _disableCorrector;
    private readonly SigmaRamp _ramp;
    private readonly double? _sigmaMin;
    private readonly double? _sigmaMax;
    private readonly FinalSigmasType _finalSigma;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly ModelOutputHistory _modelOutputs;
    private float[]? _sigmas;
    private float[] _timesteps = [];
    private float[]? _lastSample;
    private readonly SampleCopy _lastSampleCopy = new();
    private int _thisOrder;
    private int _lowerOrderNums;
    private int _nextStep;

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>UniPCMultistepScheduler</c> defaults (linear 0.0001→0.02,
    /// order 2, bh2, predict_x0 true, lower_order_final true, linspace spacing, final sigma zero). solver_type values
    /// of other solvers (midpoint, heun, logrho) become bh2, as in diffusers.
    /// </summary>
    /// <exception cref="NotSupportedException">
    /// thresholding, or use_exponential_sigmas/use_beta_sigmas (diffusers v0.31's UniPC fails on both).
    /// </exception>
    public UniPcMultistepScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        const string name = nameof(UniPcMultistepScheduler);
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: true, finiteTerminalSigma: true);
        _solverOrder = config.SolverOrder ?? 2;
        ConfigGuards.CheckSolverOrder(_solverOrder, name);
        _modelOutputs = new ModelOutputHistory(_solverOrder);
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _predictX0 = config.PredictX0 ?? true;
        _bh1 = config.SolverType == DpmSolverType.Bh1;
        _lowerOrderFinal = config.LowerOrderFinal ?? true;
        _disableCorrector = [.. config.DisableCorrector ?? []];
        _ramp = SigmaRampOption.FromConfig(config, name);
        if (_ramp is SigmaRamp.Exponential or SigmaRamp.Beta)
            throw new NotSupportedException($"{name}: use_exponential_sigmas and use_beta_sigmas are not supported (diffusers v0.31 fails on them).");
        _sigmaMin = config.SigmaMin;
        _sigmaMax = config.SigmaMax;
        _finalSigma = config.FinalSigmasType ?? FinalSigmasType.Zero;
        _spacing = config.TimestepSpacing ?? TimestepSpacing.Linspace;
        _stepsOffset = config.StepsOffset ?? 0;
        ConfigGuards.RejectThresholding(config, name);
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _sigmas is null ? throw TimestepsNotSet.Error(nameof(UniPcMultistepScheduler)) : _timesteps;

    /// <inheritdoc/>
    public IReadOnlyList<float> Sigmas => Run;

    /// <inheritdoc/>
    public float InitNoiseSigma => 1f;

    private float[] Run => _sigmas ?? throw TimestepsNotSet.Error(nameof(UniPcMultistepScheduler));

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        // With a Karras ramp, diffusers' sigma_min final sigma is the ramp's last sigma, not the schedule's smallest.
        (_sigmas, _timesteps) = SolverSchedule.Create(
            _schedule, _spacing, _schedule.TrainTimesteps, inferenceSteps, _stepsOffset, _ramp, _sigmaMin, _sigmaMax,
            (sigmas, trainingSigmas) => _finalSigma == FinalSigmasType.Zero ? 0f
                : _ramp == SigmaRamp.Karras ? (float)sigmas[^1] : trainingSigmas[0]);
        _modelOutputs.Clear();
        _lastSample = null;
        _thisOrder = 0;
        _lowerOrderNums = 0;
        _nextStep = 0;
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    public void SetBeginIndex(int beginIndex) => _nextStep = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(UniPcMultistepScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(UniPcMultistepScheduler), nameof(stepIndex));
        NoiseAdding.Solver(original, noise, Run[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var sigmas = Run;
        StepOrder.Check(stepIndex, ref _nextStep, nameof(UniPcMultistepScheduler));
        // Rented, not yet in the history: the corrector below still reads every held output.
        var converted = _modelOutputs.Rent(sample.Length);
        SolverModelOutput.Convert(_prediction, _predictX0, modelOutput, sample, sigmas[stepIndex], converted);

        // UniC: refine the sample the last step predicted, now that the model has been evaluated there.
        if (stepIndex > 0 && !_disableCorrector.Contains(stepIndex - 1) && _lastSample is { } lastSample)
            Update(stepIndex, stepIndex - 1, _thisOrder, lastSample, sample, corrector: converted);

        _modelOutputs.Add(converted);

        var order = _lowerOrderFinal ? Math.Min(_solverOrder, _timesteps.Length - stepIndex) : _solverOrder;
        _thisOrder = Math.Min(order, _lowerOrderNums + 1);
        _lastSample = _lastSampleCopy.Keep(sample);
        // UniP: predict the sample at the next sigma.
        Update(stepIndex + 1, stepIndex, _thisOrder, _lastSample, sample, corrector: null);

        if (_lowerOrderNums < _solverOrder)
            _lowerOrderNums++;
    }

    /// <summary>
    /// One UniP (predictor) or UniC (corrector, given the model output at the target) update of order
    /// <paramref name="order"/> from σ_s0 to σ_t, with the outputs at σ_s0, σ_s0−1, … taken newest first from the history.
    /// </summary>
    private void Update(int target, int source, int order, ReadOnlySpan<float> x, Span<float> destination, float[]? corrector)
    {
        var sigmas = Run;
        var (alphaT, sigmaT) = DpmSolverUpdate.AlphaSigma(sigmas[target]);
        var (alphaS0, sigmaS0) = DpmSolverUpdate.AlphaSigma(sigmas[source]);
        var lambdaS0 = DpmSolverUpdate.Lambda(alphaS0, sigmaS0);
        var h = DpmSolverUpdate.Lambda(alphaT, sigmaT) - lambdaS0;

        // rₖ = (λ_sₖ − λ_s0)/h for the older outputs, then 1.
        // Small per-order arrays on the stack: nothing is allocated per step.
        Span<float> rks = stackalloc float[order];
        for (var k = 1; k < order; k++)
        {
            var (alphaSk, sigmaSk) = DpmSolverUpdate.AlphaSigma(sigmas[source - k]);
            rks[k - 1] = (DpmSolverUpdate.Lambda(alphaSk, sigmaSk) - lambdaS0) / h;
        }
        rks[order - 1] = 1f;

        var hh = _predictX0 ? -h : h;
        var hPhi1 = (float)(Math.Exp(hh) - 1);
        var bh = _bh1 ? hh : hPhi1;
        // R[i][k] = rₖ^i and b[i] = hφ_{i+1}(h)·(i+1)!/B(h), the linear system of the UniPC order conditions.
        Span<double> matrix = stackalloc double[order * order];
        Span<double> rhs = stackalloc double[order];
        var hPhiK = hPhi1 / hh - 1f;
        var factorial = 1;
        for (var i = 1; i <= order; i++)
        {
            for (var k = 0; k < order; k++)
                matrix[(i - 1) * order + k] = Math.Pow(rks[k], i - 1);
            rhs[i - 1] = hPhiK * factorial / bh;
            factorial *= i + 1;
            hPhiK = hPhiK / hh - (float)(1.0 / factorial);
        }

        // Predictor: ρ = ½ at order 2, else the (order−1)-sized system; corrector: ½ at order 1, else the full system.
        Span<float> rhos = stackalloc float[order];
        var rhoCount = corrector is null ? order - 1 : order;
        if (rhoCount == 1) // ρ = ½: the predictor at order 2, the corrector at order 1
            rhos[0] = 0.5f;
        else if (rhoCount > 0)
            Solve(matrix, order, rhs, rhoCount, rhos);

        float ratio = _predictX0 ? sigmaT / sigmaS0 : alphaT / alphaS0;
        float firstOrder = (_predictX0 ? alphaT : sigmaT) * hPhi1;
        float scale = (_predictX0 ? alphaT : sigmaT) * bh;
        var m0 = _modelOutputs[^1];
        for (var e = 0; e < destination.Length; e++)
        {
            var result = ratio * x[e] - firstOrder * m0[e];
            // Σ ρₖ·Dₖ with Dₖ = (m_sₖ − m_s0)/rₖ over the older outputs, plus ρ_last·(m_t − m_s0) for the corrector.
            var residual = 0f;
            for (var k = 1; k < order; k++)
                residual += rhos[k - 1] * ((_modelOutputs[^(k + 1)][e] - m0[e]) / rks[k - 1]);
            if (corrector is not null)
                residual += rhos[rhoCount - 1] * (corrector[e] - m0[e]);
            destination[e] = order == 1 && corrector is null ? result : result - scale * residual;
        }
    }

    /// <summary>Solves the leading <paramref name="size"/>×<paramref name="size"/> block of the system by Gaussian elimination with partial pivoting.</summary>
    /// <remarks><paramref name="matrix"/> is row-major with <paramref name="stride"/> columns; the solution goes to <paramref name="solution"/> as float.</remarks>
    private static void Solve(ReadOnlySpan<double> matrix, int stride, ReadOnlySpan<double> rhs, int size, Span<float> solution)
    {
        var columns = size + 1;
        Span<double> a = stackalloc double[size * columns];
        for (var i = 0; i < size; i++)
        {
            for (var j = 0; j < size; j++)
                a[i * columns + j] = matrix[i * stride + j];
            a[i * columns + size] = rhs[i];
        }
        for (var column = 0; column < size; column++)
        {
            var pivot = column;
            for (var row = column + 1; row < size; row++)
                if (Math.Abs(a[row * columns + column]) > Math.Abs(a[pivot * columns + column]))
                    pivot = row;
            for (var j = 0; j <= size; j++)
                (a[column * columns + j], a[pivot * columns + j]) = (a[pivot * columns + j], a[column * columns + j]);
            for (var row = column + 1; row < size; row++)
            {
                var factor = a[row * columns + column] / a[column * columns + column];
                for (var j = column; j <= size; j++)
                    a[row * columns + j] -= factor * a[column * columns + j];
            }
        }
        Span<double> x = stackalloc double[size];
        for (var row = size - 1; row >= 0; row--)
        {
            var sum = a[row * columns + size];
            for (var j = row + 1; j < size; j++)
                sum -= a[row * columns + j] * x[j];
            x[row] = sum / a[row * columns + row];
        }
        for (var i = 0; i < size; i++)
            solution[i] = (float)x[i];
    }
}
