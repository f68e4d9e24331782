using LocalDiffusion.Randomness;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Pseudo numerical methods for diffusion models (Liu et al. 2022), matching diffusers' <c>PNDMScheduler</c>:
/// optional Runge–Kutta warm-up (PRK, three 4-evaluation steps), then the 4th-order linear multistep PLMS
/// ε' = (55εᵢ − 59εᵢ₋₁ + 37εᵢ₋₂ − 9εᵢ₋₃)/24 fed into the transfer φ(x, ε', t → t−T/n).
/// With skip_prk_steps (Stable Diffusion's config) the warm-up is replaced by lower-order PLMS steps.
/// </summary>
public sealed class PndmScheduler : IScheduler
{
    private const int PrkSteps = 12;
    private readonly NoiseSchedule _schedule;
    private readonly float _finalAlphaCumprod;
    private readonly PredictionType _prediction;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly bool _skipPrkSteps;
    // diffusers keeps every ε in `ets` but reads only the newest four.
    private readonly ModelOutputHistory _ets = new(4);
    private readonly SampleCopy _curSampleCopy = new();
    private readonly ScratchBuffer _combined = new();
    private float[] _accumulated = [];
    private int[]? _timesteps;
    private float[] _timestepValues = [];
    private int _prkCount;
    private int _stepRatio;
    private int _counter;
    private int _begin;
    private float[]? _curSample;
    private float[]? _curModelOutput;

    /// <summary>
    /// Builds the scheduler; absent keys take diffusers' <c>PNDMScheduler</c> defaults (linear 0.0001→0.02,
    /// skip_prk_steps false, set_alpha_to_one false, leading spacing).
    /// </summary>
    /// <exception cref="NotSupportedException">prediction_type is "sample", which diffusers' PNDM rejects too.</exception>
    public PndmScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _schedule = NoiseSchedule.FromConfig(config, BetaDefaults.Standard, supportsZeroSnrRescale: false, finiteTerminalSigma: false);
        _finalAlphaCumprod = (config.SetAlphaToOne ?? false) ? 1f : _schedule.AlphasCumprod[0];
        _prediction = config.PredictionType ?? PredictionType.Epsilon;
        if (_prediction == PredictionType.Sample)
            throw new NotSupportedException($"{nameof(PndmScheduler)}: prediction_type \"sample\" is not supported (diffusers' PNDM takes epsilon or v_prediction).");
        _spacing = config.TimestepSpacing ?? TimestepSpacing.Leading;
        _stepsOffset = config.StepsOffset ?? 0;
        _skipPrkSteps = config.SkipPrkSteps ?? false;
    }

    /// <inheritdoc/>
    public IReadOnlyList<float> Timesteps => _timesteps is null ? throw TimestepsNotSet.Error(nameof(PndmScheduler)) : _timestepValues;

    /// <inheritdoc/>
    public float InitNoiseSigma => 1f;

    /// <inheritdoc/>
    public void SetTimesteps(int inferenceSteps)
    {
        var trainTimesteps = _schedule.TrainTimesteps;
        TimestepSpacings.Validate(inferenceSteps, trainTimesteps);
        if (!_skipPrkSteps && inferenceSteps < 4)
            throw new InvalidRequestException(nameof(inferenceSteps), inferenceSteps, null, $"{nameof(PndmScheduler)}: Runge–Kutta warm-up (skip_prk_steps false) needs at least 4 steps.");
        // Ascending integer timesteps (diffusers' _timesteps).
        var ascending = TimestepSpacings.Rounded(_spacing, trainTimesteps, inferenceSteps, _stepsOffset);
        Array.Reverse(ascending);
        _stepRatio = trainTimesteps / inferenceSteps;

        List<int> timesteps;
        if (_skipPrkSteps)
        {
            // PLMS only: the second-largest timestep is evaluated twice (warm-up of the multistep history).
            timesteps = [.. ascending[..^1], .. ascending.Length >= 2 ? ascending[^2..^1] : [], ascending[^1]];
            timesteps.Reverse();
            _prkCount = 0;
        }
        else
        {
            // Three RK4 steps over the four largest timesteps, each evaluated at t, t−h/2 (twice) and t−h.
            var half = _stepRatio / 2;
            var prk = ascending[^4..].SelectMany(t => new[] { t, t + half }).ToArray();
            var repeated = prk[..^1].SelectMany(t => new[] { t, t }).ToArray();
            timesteps = [.. repeated[1..^1].Reverse(), .. ascending[..^3].Reverse()];
            _prkCount = PrkSteps;
        }
        _timesteps = [.. timesteps];
        _timestepValues = timesteps.Select(t => (float)t).ToArray();
        _ets.Clear();
        _counter = 0;
        _begin = 0;
        _curSample = null;
        _curModelOutput = null;
    }

    /// <inheritdoc/>
    public void ScaleModelInput(ReadOnlySpan<float> sample, Span<float> destination, int stepIndex) => sample.CopyTo(destination);

    /// <inheritdoc/>
    /// <remarks>diffusers' PNDM has no begin index: its counter restarts at 0 wherever the run starts, and so does this one's.</remarks>
    public void SetBeginIndex(int beginIndex) => _begin = NoiseAdding.CheckIndex(beginIndex, Timesteps.Count, nameof(PndmScheduler), nameof(beginIndex));

    /// <inheritdoc/>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int stepIndex, Span<float> destination)
    {
        var i = NoiseAdding.CheckIndex(stepIndex, Timesteps.Count, nameof(PndmScheduler), nameof(stepIndex));
        NoiseAdding.Alpha(original, noise, _schedule.AlphasCumprod[_timesteps![i]], destination);
    }

    /// <inheritdoc/>
    public void Step(ReadOnlySpan<float> modelOutput, int stepIndex, Span<float> sample, TorchGenerator generator)
    {
        var timesteps = _timesteps ?? throw TimestepsNotSet.Error(nameof(PndmScheduler));
        if (stepIndex != _begin + _counter)
            throw new InvalidOperationException(
                $"{nameof(PndmScheduler)}: Step({stepIndex}) called when step {_begin + _counter} was due; call Step once per timestep, in order, after SetTimesteps.");
        if (_counter < _prkCount)
            StepRungeKutta(modelOutput, timesteps[stepIndex], sample);
        else
            StepLinearMultistep(modelOutput, timesteps[stepIndex], sample);
        _counter++;
    }

    private void StepRungeKutta(ReadOnlySpan<float> modelOutput, int timestep, Span<float> sample)
    {
        var previous = timestep - (_counter % 2 == 1 ? 0 : _stepRatio / 2);
        var from = _timesteps![_counter / 4 * 4];
        var stage = _counter % 4;
        if (_curModelOutput is null)
        {
            if (_accumulated.Length != sample.Length) _accumulated = new float[sample.Length];
            _curModelOutput = _accumulated; // overwritten at stage 0 before it is read
        }
        var accumulated = _curModelOutput;
        // A copy: PreviousSample converts v-predictions to ε in place.
        var combined = _combined.Get(sample.Length);
        modelOutput.CopyTo(combined);
        switch (stage)
        {
            case 0:
                // RK4 weights 1/6, 1/3, 1/3, 1/6 accumulated over the four evaluations.
                for (var k = 0; k < accumulated.Length; k++)
                    accumulated[k] = 1f / 6 * modelOutput[k];
                AddEt(modelOutput);
                _curSample = _curSampleCopy.Keep(sample);
                break;
            case 1 or 2:
                for (var k = 0; k < accumulated.Length; k++)
                    accumulated[k] += 1f / 3 * modelOutput[k];
                break;
            default:
                for (var k = 0; k < accumulated.Length; k++)
                    combined[k] = accumulated[k] + 1f / 6 * modelOutput[k];
                break;
        }
        // PreviousSample reads and writes element by element, so the sample may be both its input and its output.
        PreviousSample(_curSample is null ? (ReadOnlySpan<float>)sample : _curSample, from, previous, combined, sample);
    }

    private void StepLinearMultistep(ReadOnlySpan<float> modelOutput, int timestep, Span<float> sample)
    {
        var previous = timestep - _stepRatio;
        if (_counter != 1)
        {
            AddEt(modelOutput);
        }
        else
        {
            // The second evaluation redoes the first step with the average of both model outputs (a Heun-like start).
            previous = timestep;
            timestep += _stepRatio;
        }

        var combined = _combined.Get(sample.Length);
        ReadOnlySpan<float> start = sample;
        if (_ets.Count == 1 && _counter == 0)
        {
            modelOutput.CopyTo(combined);
            _curSample = _curSampleCopy.Keep(sample);
        }
        else if (_ets.Count == 1 && _counter == 1)
        {
            for (var k = 0; k < combined.Length; k++)
                combined[k] = (modelOutput[k] + _ets[^1][k]) / 2;
            start = _curSample;
            _curSample = null;
        }
        else
            PlmsCombination(combined);
        PreviousSample(start, timestep, previous, combined, sample);
    }

    /// <summary>Adams–Bashforth combination of the stored model outputs, of the order the history allows (up to 4).</summary>
    private void AddEt(ReadOnlySpan<float> modelOutput)
    {
        var et = _ets.Rent(modelOutput.Length);
        modelOutput.CopyTo(et);
        _ets.Add(et);
    }

    private void PlmsCombination(Span<float> combined)
    {
        var e = _ets;
        for (var k = 0; k < combined.Length; k++)
            combined[k] = e.Count switch
            {
                2 => (3 * e[^1][k] - e[^2][k]) / 2,
                3 => (23 * e[^1][k] - 16 * e[^2][k] + 5 * e[^3][k]) / 12,
                _ => 1f / 24 * (55 * e[^1][k] - 59 * e[^2][k] + 37 * e[^3][k] - 9 * e[^4][k]),
            };
    }

    /// <summary>
    /// PNDM's transfer φ (eq. 11): x_prev = √(ᾱ_prev/ᾱ_t)·x − (ᾱ_prev − ᾱ_t)·ε / (ᾱ_t·√(1−ᾱ_prev) + √(ᾱ_t(1−ᾱ_t)ᾱ_prev)),
    /// written into <paramref name="destination"/>.
    /// </summary>
    private void PreviousSample(ReadOnlySpan<float> sample, int timestep, int previous, Span<float> modelOutput, Span<float> destination)
    {
        var alphaProd = _schedule.AlphasCumprod[timestep];
        var alphaProdPrev = previous >= 0 ? _schedule.AlphasCumprod[previous] : _finalAlphaCumprod;
        var betaProd = 1f - alphaProd;
        var betaProdPrev = 1f - alphaProdPrev;
        if (_prediction == PredictionType.VPrediction)
        {
            float sqrtAlpha = MathF.Sqrt(alphaProd), sqrtBeta = MathF.Sqrt(betaProd);
            for (var k = 0; k < modelOutput.Length; k++)
                modelOutput[k] = sqrtAlpha * modelOutput[k] + sqrtBeta * sample[k];
        }

        var sampleCoefficient = MathF.Sqrt(alphaProdPrev / alphaProd);
        var denominator = alphaProd * MathF.Sqrt(betaProdPrev) + MathF.Sqrt(alphaProd * betaProd * alphaProdPrev);
        var difference = alphaProdPrev - alphaProd;
        for (var k = 0; k < destination.Length; k++)
            destination[k] = sampleCoefficient * sample[k] - difference * modelOutput[k] / denominator;
    }
}
