namespace LocalDiffusion.Schedulers;

/// <summary>How the training betas are laid out over the timesteps (diffusers' <c>beta_schedule</c>).</summary>
public enum BetaSchedule
{
    /// <summary><c>linear</c>: betas evenly spaced from beta_start to beta_end.</summary>
    Linear,
    /// <summary><c>scaled_linear</c>: square roots evenly spaced, then squared (Stable Diffusion).</summary>
    ScaledLinear,
    /// <summary><c>squaredcos_cap_v2</c>: the cosine schedule of Nichol and Dhariwal, betas capped at 0.999.</summary>
    SquaredCosCapV2,
}

/// <summary>What the model predicts (diffusers' <c>prediction_type</c>).</summary>
public enum PredictionType
{
    /// <summary><c>epsilon</c>: the noise.</summary>
    Epsilon,
    /// <summary><c>v_prediction</c>: the velocity v = α·ε − σ·x₀ (SD 2.x 768-v models).</summary>
    VPrediction,
    /// <summary><c>sample</c>: the clean sample x₀ directly.</summary>
    Sample,
}

/// <summary>How inference timesteps are picked from the training timesteps (diffusers' <c>timestep_spacing</c>).</summary>
public enum TimestepSpacing
{
    /// <summary><c>leading</c>: multiples of T/n from 0, plus steps_offset.</summary>
    Leading,
    /// <summary><c>trailing</c>: multiples of T/n counted down from T, minus 1 (reaches the last training step).</summary>
    Trailing,
    /// <summary><c>linspace</c>: evenly spaced from T−1 down to 0.</summary>
    Linspace,
}

/// <summary>The sigma appended after the last step (diffusers' <c>final_sigmas_type</c>).</summary>
public enum FinalSigmasType
{
    /// <summary><c>zero</c>: the last step lands on a clean sample.</summary>
    Zero,
    /// <summary><c>sigma_min</c>: the last step lands on the smallest training sigma.</summary>
    SigmaMin,
}

/// <summary>A multistep solver's formulation (diffusers' <c>algorithm_type</c>).</summary>
public enum DpmSolverAlgorithmType
{
    /// <summary><c>dpmsolver++</c>: data prediction, the usual choice for guided sampling.</summary>
    DpmSolverPlusPlus,
    /// <summary><c>dpmsolver</c>: noise prediction.</summary>
    DpmSolver,
    /// <summary><c>sde-dpmsolver++</c>: the stochastic variant of dpmsolver++ (draws noise each step).</summary>
    SdeDpmSolverPlusPlus,
    /// <summary><c>sde-dpmsolver</c>: the stochastic variant of dpmsolver.</summary>
    SdeDpmSolver,
    /// <summary><c>deis</c>: DEIS's own formulation (DPM-Solver reads it as dpmsolver++, as diffusers does).</summary>
    Deis,
}

/// <summary>
/// A multistep solver's update rule (diffusers' <c>solver_type</c>): DPM-Solver's midpoint/heun, DEIS's logrho,
/// UniPC's bh1/bh2. DPM-Solver reads the DEIS and UniPC values as midpoint, as diffusers does.
/// </summary>
public enum DpmSolverType
{
    /// <summary><c>midpoint</c>.</summary>
    Midpoint,
    /// <summary><c>heun</c>.</summary>
    Heun,
    /// <summary><c>logrho</c> (DEIS).</summary>
    Logrho,
    /// <summary><c>bh1</c> (UniPC).</summary>
    Bh1,
    /// <summary><c>bh2</c> (UniPC).</summary>
    Bh2,
}

/// <summary>How Euler's sigmas are interpolated at the inference timesteps (diffusers' <c>interpolation_type</c>).</summary>
public enum InterpolationType
{
    /// <summary><c>linear</c>: linear in the timestep.</summary>
    Linear,
    /// <summary><c>log_linear</c>: log-sigma evenly spaced between the extreme training sigmas.</summary>
    LogLinear,
}

/// <summary>Whether Euler feeds the UNet discrete timesteps or continuous ¼·ln σ (diffusers' <c>timestep_type</c>).</summary>
public enum TimestepType
{
    /// <summary><c>discrete</c>.</summary>
    Discrete,
    /// <summary><c>continuous</c> (only with v_prediction, for models trained that way).</summary>
    Continuous,
}
