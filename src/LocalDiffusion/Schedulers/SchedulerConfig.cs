namespace LocalDiffusion.Schedulers;

/// <summary>
/// The settings of a diffusers <c>scheduler_config.json</c>. Every property is null when the key is absent:
/// like diffusers' <c>from_config</c>, a scheduler then uses its own class default, so the same config can
/// drive different scheduler classes. Override keys in code with <c>with</c>, e.g.
/// <c>config with { UseKarrasSigmas = true }</c>.
/// </summary>
public sealed record SchedulerConfig
{
    /// <summary>An empty config: every scheduler uses its class defaults.</summary>
    public static SchedulerConfig Default { get; } = new();

    /// <summary>Reads a diffusers <c>scheduler_config.json</c>; unknown keys are ignored, a JSON null counts as absent.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not JSON, or a key has a wrong type or value; the message names the file and key.</exception>
    public static SchedulerConfig Load(string path) => Read(File.ReadAllText(path), path);

    /// <summary>Parses the JSON text of a scheduler config; <paramref name="source"/> names it in error messages.</summary>
    /// <exception cref="InvalidDataException">The text is not JSON, or a key has a wrong type or value.</exception>
    public static SchedulerConfig Parse(string json, string source = "scheduler config") => Read(json, source);

    private static SchedulerConfig Read(string json, string source)
    {
        try
        {
            return SchedulerConfigReader.Read(json);
        }
        catch (SchedulerConfigProblem problem)
        {
            throw new InvalidDataException($"{source}: {problem.Problem}", problem);
        }
    }

    /// <summary><c>_class_name</c>: the diffusers scheduler class the config was saved from.</summary>
    public string? ClassName { get; init; }

    /// <summary><c>num_train_timesteps</c>: T, the number of training timesteps.</summary>
    public int? NumTrainTimesteps { get; init; }

    /// <summary><c>beta_start</c>: the first training beta.</summary>
    public double? BetaStart { get; init; }

    /// <summary><c>beta_end</c>: the last training beta.</summary>
    public double? BetaEnd { get; init; }

    /// <summary><c>beta_schedule</c>.</summary>
    public BetaSchedule? BetaSchedule { get; init; }

    /// <summary><c>trained_betas</c>: explicit betas, used instead of the beta schedule when present.</summary>
    public IReadOnlyList<float>? TrainedBetas { get; init; }

    /// <summary><c>prediction_type</c>.</summary>
    public PredictionType? PredictionType { get; init; }

    /// <summary><c>timestep_spacing</c>.</summary>
    public TimestepSpacing? TimestepSpacing { get; init; }

    /// <summary><c>steps_offset</c>: added to leading-spaced timesteps (1 for Stable Diffusion).</summary>
    public int? StepsOffset { get; init; }

    /// <summary><c>set_alpha_to_one</c>: DDIM/PNDM's ᾱ after the last step is 1 (else ᾱ₀).</summary>
    public bool? SetAlphaToOne { get; init; }

    /// <summary><c>skip_prk_steps</c>: PNDM starts with PLMS steps instead of Runge–Kutta warm-up steps.</summary>
    public bool? SkipPrkSteps { get; init; }

    /// <summary><c>clip_sample</c>: DDIM clips its x₀ estimate to ±clip_sample_range.</summary>
    public bool? ClipSample { get; init; }

    /// <summary><c>clip_sample_range</c>.</summary>
    public double? ClipSampleRange { get; init; }

    /// <summary><c>thresholding</c>: Imagen's dynamic thresholding of x₀ (pixel-space models only; not supported here).</summary>
    public bool? Thresholding { get; init; }

    /// <summary><c>dynamic_thresholding_ratio</c>.</summary>
    public double? DynamicThresholdingRatio { get; init; }

    /// <summary><c>sample_max_value</c>.</summary>
    public double? SampleMaxValue { get; init; }

    /// <summary><c>use_karras_sigmas</c>: the sigma ramp of Karras et al. (2022), ρ = 7.</summary>
    public bool? UseKarrasSigmas { get; init; }

    /// <summary><c>use_exponential_sigmas</c>: log-sigma evenly spaced.</summary>
    public bool? UseExponentialSigmas { get; init; }

    /// <summary><c>use_beta_sigmas</c>: sigmas at Beta(0.6, 0.6) quantiles.</summary>
    public bool? UseBetaSigmas { get; init; }

    /// <summary><c>use_lu_lambdas</c>: DPM-Solver's log-SNR evenly spaced (Lu et al.).</summary>
    public bool? UseLuLambdas { get; init; }

    /// <summary><c>rescale_betas_zero_snr</c>: rescale betas so the last timestep has zero SNR (Lin et al. 2023).</summary>
    public bool? RescaleBetasZeroSnr { get; init; }

    /// <summary><c>final_sigmas_type</c>.</summary>
    public FinalSigmasType? FinalSigmasType { get; init; }

    /// <summary><c>solver_order</c>: the order of a multistep solver.</summary>
    public int? SolverOrder { get; init; }

    /// <summary><c>algorithm_type</c> of DPM-Solver.</summary>
    public DpmSolverAlgorithmType? AlgorithmType { get; init; }

    /// <summary><c>solver_type</c> of DPM-Solver.</summary>
    public DpmSolverType? SolverType { get; init; }

    /// <summary><c>lower_order_final</c>: lower-order steps at the end of short schedules (fewer than 15 steps).</summary>
    public bool? LowerOrderFinal { get; init; }

    /// <summary><c>euler_at_final</c>: a first-order last step.</summary>
    public bool? EulerAtFinal { get; init; }

    /// <summary><c>interpolation_type</c> of Euler.</summary>
    public InterpolationType? InterpolationType { get; init; }

    /// <summary><c>timestep_type</c> of Euler.</summary>
    public TimestepType? TimestepType { get; init; }

    /// <summary><c>sigma_min</c>: the low end of a Karras/exponential/beta sigma ramp (else the smallest schedule sigma).</summary>
    public double? SigmaMin { get; init; }

    /// <summary><c>sigma_max</c>: the high end of a Karras/exponential/beta sigma ramp (else the largest schedule sigma).</summary>
    public double? SigmaMax { get; init; }

    /// <summary><c>lambda_min_clipped</c>: DPM-Solver's lower clip of log-SNR.</summary>
    public double? LambdaMinClipped { get; init; }

    /// <summary><c>variance_type</c>: "learned" / "learned_range" for models that also predict variance (not supported here).</summary>
    public string? VarianceType { get; init; }

    /// <summary><c>predict_x0</c>: UniPC works with the data prediction x₀ (true, its default) or with the noise ε.</summary>
    public bool? PredictX0 { get; init; }

    /// <summary><c>disable_corrector</c>: the step indices at which UniPC skips its corrector (UniC).</summary>
    public IReadOnlyList<int>? DisableCorrector { get; init; }

    /// <summary><c>original_inference_steps</c>: the step count of LCM/TCD's distillation schedule that inference steps are drawn from.</summary>
    public int? OriginalInferenceSteps { get; init; }

    /// <summary><c>timestep_scaling</c>: LCM/TCD's scale of the timestep in the consistency boundary conditions c_skip, c_out.</summary>
    public double? TimestepScaling { get; init; }

    /// <summary><c>shift</c>: flow matching's timestep shift s, σ ← s·σ/(1 + (s − 1)·σ) (SD3: 3.0; FlowMatch class default 1.0).</summary>
    public double? Shift { get; init; }

    /// <summary><c>use_dynamic_shifting</c>: flow matching shifts by a per-request μ (FLUX.1-dev) instead of <see cref="Shift"/>.</summary>
    public bool? UseDynamicShifting { get; init; }

    /// <summary><c>base_shift</c>: μ at <see cref="BaseImageSeqLen"/> image tokens (FLUX: 0.5).</summary>
    public double? BaseShift { get; init; }

    /// <summary><c>max_shift</c>: μ at <see cref="MaxImageSeqLen"/> image tokens (FLUX: 1.15).</summary>
    public double? MaxShift { get; init; }

    /// <summary><c>base_image_seq_len</c>: the image token count that gets <see cref="BaseShift"/> (FLUX: 256).</summary>
    public int? BaseImageSeqLen { get; init; }

    /// <summary><c>max_image_seq_len</c>: the image token count that gets <see cref="MaxShift"/> (FLUX: 4096).</summary>
    public int? MaxImageSeqLen { get; init; }

    /// <summary>
    /// Not a config key: the <c>eta</c> that diffusers' pipelines pass to <c>step</c> — DDIM's η (fresh-noise weight) and
    /// TCD's γ. Null: the class's own step default (DDIM 0, TCD 0.3). The pipeline sets it from
    /// <see cref="GenerationRequest.Eta"/>, 0 unless asked, as diffusers' StableDiffusionPipeline does.
    /// </summary>
    public double? Eta { get; init; }
}
