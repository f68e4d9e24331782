using LocalDiffusion.Randomness;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// DPM-Solver / DPM-Solver++ multistep (Lu et al. 2022), matching diffusers' <c>DPMSolverMultistepScheduler</c>:
/// the model output is converted to x₀ (dpmsolver++) or ε (dpmsolver), and the ODE is stepped in λ = ln(α/σ) with
/// the last <c>solver_order</c> outputs. Defaults: dpmsolver++, order 2, midpoint — AUTOMATIC1111's "DPM++ 2M";
/// with use_karras_sigmas "DPM++ 2M Karras"; sde-dpmsolver++ is "DPM++ 2M SDE" (draws noise each step), and with
/// order 3 "DPM++ 3M SDE" (diffusers v0.32). Exponential and beta sigmas follow diffusers v0.32, which fixed v0.31's
/// ascending ramps.
/// </summary>
public sealed class DpmSolverMultistepScheduler : IScheduler, ISigmaSchedule
{
    private readonly NoiseSchedule _schedule;
    private readonly int _solverOrder;
    private readonly PredictionType _prediction;
    private readonly DpmSolverAlgorithmType _algorithm;
    private readonly DpmSolverType _solverType;
    private readonly bool _lowerOrderFinal;
    private readonly bool _eulerAtFinal;
    private readonly SigmaRamp _ramp;
    private readonly double? _sigmaMin;
    private readonly double? _sigmaMax;
    private readonly FinalSigmasType _finalSigma;
    private readonly double _lambdaMinClipped;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly ModelOutputHistory _modelOutputs;
    private readonly NoiseBuffer _noise = new();
    private float[]? _sigmas;
    private float[] _timesteps = [];
    private int _lowerOrderNums;
    private int _nextStep;

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>DPMSolverMultistepScheduler</c> defaults (linear
    /// 0.0001→0.02, order 2, dpmsolver++, midpoint, lower_order_final true, linspace spacing, final sigma zero).
    /// </summary>
    /// <exception cref="ArgumentException">An option combination diffusers rejects (e.g. dpmsolver with final_sigmas_type zero).</exception>
    /// <exception cref="NotSupportedException">The config asks for a diffusers option this port does not implement.</exception>
    public DpmSolverMultistepScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        const string name = nameof(DpmSolverMultistepScheduler);
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: true, finiteTerminalSigma: true);
        _solverOrder = config.SolverOrder ?? 2;
        _modelOutputs = new ModelOutputHistory(_solverOrder);
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        _algorithm = DpmSolverOptions.Algorithm(config);
        _solverType = DpmSolverOptions.SolverType(config);
        _lowerOrderFinal = config.LowerOrderFinal ?? true;
        _eulerAtFinal = config.EulerAtFinal ?? false;
        _ramp = SigmaRampOption.FromConfig(config, name);
        _sigmaMin = config.SigmaMin;
        _sigmaMax = config.SigmaMax;
        _finalSigma = config.FinalSigmasType ?? FinalSigmasType.Zero;
        _lambdaMinClipped = config.LambdaMinClipped ?? double.NegativeInfinity;
        _spacing = config.TimestepSpacing ?? TimestepSpacing.Linspace;
        _stepsOffset = config.StepsOffset ?? 0;

        ConfigGuards.CheckSolverOrder(_solverOrder, name);
        if (_algorithm == DpmSolverAlgorithmType.SdeDpmSolver && _solverOrder == 3)
            throw new InvalidRequestException(nameof(config), null, null, $"{name}: sde-dpmsolver supports solver_order 1 or 2, not 3.");
        if (!IsDataPrediction && _finalSigma == FinalSigmasType.Zero)
            throw new InvalidRequestException(nameof(config), null, null, $"{name}: final_sigmas_type \"zero\" is not supported with algorithm_type {_algorithm}; use \"sigma_min\".");
        if (config.UseLuLambdas ?? false)
            throw new NotSupportedException($"{name}: use_lu_lambdas is not supported.");
        ConfigGuards.RejectThresholding(config, name);
        ConfigGuards.RejectLearnedVariance(config, name);
    }

    private bool IsSde => _algorithm is DpmSolverAlgorithmType.SdeDpmSolverPlusPlus or DpmSolverAlgorithmType.SdeDpmSolver;

    private bool IsDataPrediction => _algorithm is DpmSolverAlgorithmType.DpmSolverPlusPlus or DpmSolverAlgorithmType.SdeDpmSolverPlusPlus;

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _sigmas is null ? throw TimestepsNotSet.Error(nameof(DpmSolverMultistepScheduler)) : _timesteps;

    /// <inheritdoc/>
    public IReadOnlyList<float> Sigmas => _sigmas ?? throw TimestepsNotSet.Error(nameof(DpmSolverMultistepScheduler));

    /// <inheritdoc/>
    public float InitNoiseSigma => 1f;

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        var lastTimestep = _schedule.TrainTimesteps - SolverSchedule.ClippedTimesteps(_schedule, _lambdaMinClipped);
        (_sigmas, _timesteps) = SolverSchedule.Create(
            _schedule, _spacing, lastTimestep, inferenceSteps, _stepsOffset, _ramp, _sigmaMin, _sigmaMax,
            (_, trainingSigmas) => _finalSigma == FinalSigmasType.SigmaMin ? trainingSigmas[0] : 0f);
        _modelOutputs.Clear();
        _lowerOrderNums = 0;
        _nextStep = 0;
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    public void SetBeginIndex(int beginIndex) => _nextStep = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(DpmSolverMultistepScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(DpmSolverMultistepScheduler), nameof(stepIndex));
        NoiseAdding.Solver(original, noise, Sigmas[i], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var sigmas = _sigmas ?? throw TimestepsNotSet.Error(nameof(DpmSolverMultistepScheduler));
        StepOrder.Check(stepIndex, ref _nextStep, nameof(DpmSolverMultistepScheduler));
        var steps = _timesteps.Length;
        var lowerOrderFinal = stepIndex == steps - 1
            && (_eulerAtFinal || (_lowerOrderFinal && steps < 15) || _finalSigma == FinalSigmasType.Zero);
        var lowerOrderSecond = stepIndex == steps - 2 && _lowerOrderFinal && steps < 15;

        var converted = _modelOutputs.Rent(sample.Length);
        SolverModelOutput.Convert(_prediction, IsDataPrediction, modelOutput, sample, sigmas[stepIndex], converted);
        _modelOutputs.Add(converted);

        Span<float> noise = default;
        if (IsSde)
        {
            noise = _noise.Draw(generator, sample.Length);
        }

        var update = new DpmSolverUpdate(_algorithm, _solverType, sigmas, stepIndex);
        if (_solverOrder == 1 || _lowerOrderNums < 1 || lowerOrderFinal)
            update.FirstOrder(converted, sample, noise);
        else if (_solverOrder == 2 || _lowerOrderNums < 2 || lowerOrderSecond)
            update.SecondOrder(_modelOutputs[^1], _modelOutputs[^2], sample, noise);
        else
            update.ThirdOrder(_modelOutputs[^1], _modelOutputs[^2], _modelOutputs[^3], sample, noise);

        if (_lowerOrderNums < _solverOrder)
            _lowerOrderNums++;
    }
}
