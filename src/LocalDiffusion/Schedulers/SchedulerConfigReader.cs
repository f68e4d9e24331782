using System.Text.Json;
using System.Text.RegularExpressions;

namespace LocalDiffusion.Schedulers;

/// <summary>Parses diffusers' <c>scheduler_config.json</c> into a <see cref="SchedulerConfig"/>, checking each known key's type.</summary>
internal static class SchedulerConfigReader
{
    public static SchedulerConfig Read(string json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(QuoteNonFiniteLiterals(json), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new SchedulerConfigProblem($"not valid JSON ({e.Message}).", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new SchedulerConfigProblem($"expected a JSON object of scheduler settings, found {document.RootElement.ValueKind}.");

            var config = SchedulerConfig.Default;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.Null)
                    continue;
                var v = new Value(property.Name, property.Value);
                config = property.Name switch
                {
                    "_class_name" => config with { ClassName = v.String() },
                    "num_train_timesteps" => config with { NumTrainTimesteps = v.Int(minimum: 1) },
                    "beta_start" => config with { BetaStart = v.Double() },
                    "beta_end" => config with { BetaEnd = v.Double() },
                    "beta_schedule" => config with { BetaSchedule = v.Name(ConfigNames.BetaSchedules) },
                    "trained_betas" => config with { TrainedBetas = v.FloatArray() },
                    "prediction_type" => config with { PredictionType = v.Name(ConfigNames.PredictionTypes) },
                    "timestep_spacing" => config with { TimestepSpacing = v.Name(ConfigNames.TimestepSpacings) },
                    "steps_offset" => config with { StepsOffset = v.Int(minimum: 0) },
                    "set_alpha_to_one" => config with { SetAlphaToOne = v.Bool() },
                    "skip_prk_steps" => config with { SkipPrkSteps = v.Bool() },
                    "clip_sample" => config with { ClipSample = v.Bool() },
                    "clip_sample_range" => config with { ClipSampleRange = v.Double() },
                    "thresholding" => config with { Thresholding = v.Bool() },
                    "dynamic_thresholding_ratio" => config with { DynamicThresholdingRatio = v.Double() },
                    "sample_max_value" => config with { SampleMaxValue = v.Double() },
                    "use_karras_sigmas" => config with { UseKarrasSigmas = v.Bool() },
                    "use_exponential_sigmas" => config with { UseExponentialSigmas = v.Bool() },
                    "use_beta_sigmas" => config with { UseBetaSigmas = v.Bool() },
                    "use_lu_lambdas" => config with { UseLuLambdas = v.Bool() },
                    "rescale_betas_zero_snr" => config with { RescaleBetasZeroSnr = v.Bool() },
                    "final_sigmas_type" => config with { FinalSigmasType = v.Name(ConfigNames.FinalSigmasTypes) },
                    "solver_order" => config with { SolverOrder = v.Int(minimum: 1) },
                    "algorithm_type" => config with { AlgorithmType = v.Name(ConfigNames.AlgorithmTypes) },
                    "solver_type" => config with { SolverType = v.Name(ConfigNames.SolverTypes) },
                    "lower_order_final" => config with { LowerOrderFinal = v.Bool() },
                    "euler_at_final" => config with { EulerAtFinal = v.Bool() },
                    "interpolation_type" => config with { InterpolationType = v.Name(ConfigNames.InterpolationTypes) },
                    "timestep_type" => config with { TimestepType = v.Name(ConfigNames.TimestepTypes) },
                    "sigma_min" => config with { SigmaMin = v.Double() },
                    "sigma_max" => config with { SigmaMax = v.Double() },
                    "lambda_min_clipped" => config with { LambdaMinClipped = v.Double() },
                    "variance_type" => config with { VarianceType = v.String() },
                    "predict_x0" => config with { PredictX0 = v.Bool() },
                    "disable_corrector" => config with { DisableCorrector = v.IntArray() },
                    "original_inference_steps" => config with { OriginalInferenceSteps = v.Int(minimum: 1) },
                    "timestep_scaling" => config with { TimestepScaling = v.Double() },
                    "shift" => config with { Shift = v.Double() },
                    "use_dynamic_shifting" => config with { UseDynamicShifting = v.Bool() },
                    "base_shift" => config with { BaseShift = v.Double() },
                    "max_shift" => config with { MaxShift = v.Double() },
                    "base_image_seq_len" => config with { BaseImageSeqLen = v.Int(minimum: 1) },
                    "max_image_seq_len" => config with { MaxImageSeqLen = v.Int(minimum: 1) },
                    _ => config,
                };
            }
            CheckRanges(config);
            TrainingScheduleCheck.Check(config);
            return config;
        }
    }

    // Which values make sense is known without the class: betas are probabilities, offsets and distilled schedules live
    // inside the training range. Out of range they index past the schedule or turn the first step into NaN.
    private const int MaxTrainTimesteps = 100_000;

    private static void CheckRanges(SchedulerConfig c)
    {
        var trainTimesteps = c.NumTrainTimesteps ?? 1000;
        void Require(bool ok, string key, object? value, string expected)
        {
            if (!ok)
                throw new SchedulerConfigProblem($"key \"{key}\" is {Format(value)}; expected {expected}.");
        }
        Require(trainTimesteps <= MaxTrainTimesteps, "num_train_timesteps", trainTimesteps, $"at most {MaxTrainTimesteps} (Stable Diffusion uses 1000)");
        Require(c.BetaStart is not { } start || start is > 0 and < 1, "beta_start", c.BetaStart, "a number between 0 and 1 (SD: 0.00085)");
        Require(c.BetaEnd is not { } end || end is > 0 and < 1, "beta_end", c.BetaEnd, "a number between 0 and 1 (SD: 0.012)");
        if (c.TrainedBetas is { } betas)
        {
            Require(betas.Count == trainTimesteps, "trained_betas", $"{betas.Count} values", $"num_train_timesteps ({trainTimesteps}) values");
            foreach (var beta in betas)
                Require(beta is > 0 and < 1, "trained_betas", $"an array holding {Format(beta)}", "values between 0 and 1");
        }
        Require(c.StepsOffset is not { } offset || offset < trainTimesteps, "steps_offset", c.StepsOffset,
            $"less than num_train_timesteps ({trainTimesteps}); Stable Diffusion uses 1");
        Require(c.OriginalInferenceSteps is not { } original || original <= trainTimesteps, "original_inference_steps", c.OriginalInferenceSteps,
            $"at most num_train_timesteps ({trainTimesteps}); LCM uses 50");
        Require(c.ClipSampleRange is not { } range || (double.IsFinite(range) && range > 0), "clip_sample_range", c.ClipSampleRange, "a positive number (1.0)");
        Require(c.SampleMaxValue is not { } max || (double.IsFinite(max) && max > 0), "sample_max_value", c.SampleMaxValue, "a positive number (1.0)");
        Require(c.DynamicThresholdingRatio is not { } ratio || ratio is > 0 and <= 1, "dynamic_thresholding_ratio", c.DynamicThresholdingRatio, "a number in (0, 1] (0.995)");
        Require(c.SigmaMin is not { } sMin || (double.IsFinite(sMin) && sMin > 0), "sigma_min", c.SigmaMin, "a positive number");
        Require(c.SigmaMax is not { } sMax || (double.IsFinite(sMax) && sMax > 0), "sigma_max", c.SigmaMax, "a positive number");
        Require(c.SigmaMin is not { } lo || c.SigmaMax is not { } hi || lo < hi, "sigma_min", c.SigmaMin, $"less than sigma_max ({Format(c.SigmaMax)})");
        Require(c.TimestepScaling is not { } scaling || (double.IsFinite(scaling) && scaling > 0), "timestep_scaling", c.TimestepScaling, "a positive number (10.0)");
        Require(c.Shift is not { } shift || (double.IsFinite(shift) && shift > 0), "shift", c.Shift, "a positive number (SD3: 3.0)");
        Require(c.BaseShift is not { } baseShift || double.IsFinite(baseShift), "base_shift", c.BaseShift, "a finite number (FLUX: 0.5)");
        Require(c.MaxShift is not { } maxShift || double.IsFinite(maxShift), "max_shift", c.MaxShift, "a finite number (FLUX: 1.15)");
        Require(c.BaseImageSeqLen is not { } baseLen || c.MaxImageSeqLen is not { } maxLen || baseLen != maxLen, "max_image_seq_len", c.MaxImageSeqLen,
            $"a token count other than base_image_seq_len ({c.BaseImageSeqLen}) (FLUX: 256 and 4096)");
        Require(c.LambdaMinClipped is not { } lambda || !double.IsNaN(lambda), "lambda_min_clipped", c.LambdaMinClipped, "a number or -Infinity");
    }

    private static string Format(object? value) => value switch
    {
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        float f => f.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        null => "absent",
        _ => value.ToString() ?? "",
    };

    /// <summary>
    /// Python's json module writes non-finite floats as bare <c>-Infinity</c>/<c>Infinity</c>/<c>NaN</c> (diffusers' default
    /// lambda_min_clipped is −∞), which is not JSON; quote them so the number reader can accept them.
    /// </summary>
    private static string QuoteNonFiniteLiterals(string json) =>
        Regex.Replace(json, @"(?<=[:\[,]\s*)(-?Infinity|NaN)(?=\s*[,}\]])", "\"$1\"");

    /// <summary>One key's JSON value, with readers that name the key when the type or value is wrong.</summary>
    private readonly record struct Value(string Key, JsonElement Element)
    {
        public string String() => Element.ValueKind == JsonValueKind.String ? Element.GetString()! : throw Wrong("a string");

        public bool Bool() => Element.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Wrong("true or false"),
        };

        public double Double()
        {
            if (Element.ValueKind == JsonValueKind.Number && Element.TryGetDouble(out var value))
                return value;
            return Element.ValueKind == JsonValueKind.String && Element.GetString() is "-Infinity" or "Infinity"
                ? (Element.GetString() == "Infinity" ? double.PositiveInfinity : double.NegativeInfinity)
                : throw Wrong("a number");
        }

        public int Int(int minimum)
        {
            if (Element.ValueKind != JsonValueKind.Number || !Element.TryGetInt32(out var value))
                throw Wrong("an integer");
            return value >= minimum ? value : throw Wrong($"an integer ≥ {minimum}");
        }

        public float[] FloatArray()
        {
            if (Element.ValueKind != JsonValueKind.Array)
                throw Wrong("an array of numbers");
            var values = new float[Element.GetArrayLength()];
            var i = 0;
            foreach (var item in Element.EnumerateArray())
                values[i++] = item.ValueKind == JsonValueKind.Number ? item.GetSingle() : throw Wrong("an array of numbers");
            return values;
        }

        public int[] IntArray()
        {
            if (Element.ValueKind != JsonValueKind.Array)
                throw Wrong("an array of integers");
            var values = new int[Element.GetArrayLength()];
            var i = 0;
            foreach (var item in Element.EnumerateArray())
                values[i++] = item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out var value) ? value : throw Wrong("an array of integers");
            return values;
        }

        public T Name<T>(IReadOnlyDictionary<string, T> names) where T : struct, Enum =>
            Element.ValueKind == JsonValueKind.String && names.TryGetValue(Element.GetString()!, out var value)
                ? value
                : throw Wrong($"one of {string.Join(", ", names.Keys.Select(k => $"\"{k}\""))}");

        private SchedulerConfigProblem Wrong(string expected) =>
            new($"key \"{Key}\" is {Element.GetRawText()}; expected {expected}.");
    }
}
