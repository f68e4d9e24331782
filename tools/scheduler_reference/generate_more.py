#!/usr/bin/env python3
"""Reference numbers for the samplers beyond generate.py's six, produced by diffusers itself.

Same inputs, run loop and number format as generate.py (whose constants and helpers it imports): for each case the
timesteps, sigmas (diffusers' own array where the class has one) and init_noise_sigma of set_timesteps, and a full
scale_model_input + step run on inputs the C# tests recreate from a formula. Stochastic cases pass
torch.Generator().manual_seed(seed) to step; TCD cases record the eta they pass to step.

Two diffusers versions are needed, so the script writes the file for the version it is run with:
  v0.31.0 → diffusers_reference_more.json: Heun, DPM2, DPM2 a, DPM++ 2M SDE registry entries, UniPC, DDPM,
            DPMSolverSinglestep, DEIS, LCM, TCD, Euler with exponential/beta sigmas.
  v0.32.0 → diffusers_reference_0_32.json: what v0.31.0 lacks or gets wrong: DPM++ 3M SDE (third-order
            sde-dpmsolver++ arrived in v0.32.0) and DPM-Solver multistep with exponential/beta sigmas (v0.31.0 builds
            those ramps from the unflipped training sigmas, so they ascend; v0.32.0 fixed it).

How to run it (see generate.py for the diffusers/huggingface_hub checkouts; beta sigmas also need python3-scipy):
    git -C diffusers archive v0.32.0 src | tar -x -C /tmp/diffusers-0.32.0
    for v in 0.31.0 0.32.0; do
      PYTHONPATH=/tmp/diffusers-$v/src:/tmp/hfhub-0.25.2/src:tools/scheduler_reference \
        /usr/bin/python3 tools/scheduler_reference/generate_more.py
    done
"""
import inspect
import json
import os
import sys

import numpy as np
import scipy
import torch

import diffusers
import generate as base

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "..", "tests", "LocalDiffusion.Tests", "TestData", "Schedulers")
SD15 = base.SD15
with_keys = base.with_keys


def run_case(name, scheduler_id, class_name, config, steps, seed=None, eta=None):
    cls = getattr(diffusers, class_name)
    scheduler = cls.from_config(config)
    scheduler.set_timesteps(steps)
    k = np.arange(base.COUNT)
    sample = torch.from_numpy(np.sin(0.37 * k + 1.0).astype(np.float32)).reshape(base.SHAPE)
    sample = sample * scheduler.init_noise_sigma
    step_parameters = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if seed is not None:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    if eta is not None:
        kwargs["eta"] = eta
    assert all(key in step_parameters for key in kwargs), f"{name}: {class_name}.step takes no {list(kwargs)}"
    trajectory = []
    for i, t in enumerate(scheduler.timesteps):
        scaled = scheduler.scale_model_input(sample, t)
        offset = torch.from_numpy((0.3 * np.cos(0.23 * k + 0.5 * i)).astype(np.float32)).reshape(base.SHAPE)
        model_output = 0.6 * scaled + offset
        sample = scheduler.step(model_output, t, sample, **kwargs).prev_sample
        trajectory.append(base.f32_list(sample.reshape(-1).numpy()[base.TRACKED]))
    sigmas = getattr(scheduler, "sigmas", None)
    return {
        "name": name,
        "scheduler": scheduler_id,
        "class": class_name,
        "config": config,
        "steps": steps,
        "seed": seed,
        "eta": eta,
        "timesteps": base.f32_list(scheduler.timesteps.numpy()),
        "sigmas": base.f32_list(sigmas.numpy()) if isinstance(sigmas, torch.Tensor) else None,
        "init_noise_sigma": base.f32(float(scheduler.init_noise_sigma)),
        "trajectory": trajectory,
        "final": base.f32_list(sample.reshape(-1).numpy()),
    }


def k_diffusion_cases(sid, cls, seeded, sample_prediction):
    """Heun, DPM2 and DPM2 a: the same option surface (no zero-SNR, no final sigma type)."""
    extra = {"seed": 21} if seeded else {}
    for steps in (1, 4, 10, 25):
        yield f"{sid}/sd15/{steps}", sid, cls, SD15, steps, extra
    yield f"{sid}/class_defaults/10", sid, cls, {}, 10, extra
    yield f"{sid}/v_prediction/10", sid, cls, with_keys(SD15, prediction_type="v_prediction"), 10, extra
    yield f"{sid}/leading/10", sid, cls, with_keys(SD15, timestep_spacing="leading"), 10, extra
    yield f"{sid}/trailing/10", sid, cls, with_keys(SD15, timestep_spacing="trailing"), 10, extra
    yield f"{sid}/squaredcos/10", sid, cls, with_keys(SD15, beta_schedule="squaredcos_cap_v2"), 10, extra
    yield f"{sid}/karras/10", sid, cls, with_keys(SD15, use_karras_sigmas=True), 10, extra
    yield f"{sid}/karras_v/25", sid, cls, with_keys(SD15, use_karras_sigmas=True, prediction_type="v_prediction"), 25, extra
    yield f"{sid}/exponential/10", sid, cls, with_keys(SD15, use_exponential_sigmas=True), 10, extra
    yield f"{sid}/beta/10", sid, cls, with_keys(SD15, use_beta_sigmas=True), 10, extra
    if sample_prediction:
        yield f"{sid}/sample_prediction/10", sid, cls, with_keys(SD15, prediction_type="sample"), 10, extra


def multistep_cases(sid, cls, zero_snr):
    """UniPC and DEIS: solver order, lower-order final, spacings, ramps, prediction types."""
    for steps in (1, 4, 10, 25):
        yield f"{sid}/sd15/{steps}", sid, cls, SD15, steps, {}
    yield f"{sid}/class_defaults/10", sid, cls, {}, 10, {}
    yield f"{sid}/v_prediction/10", sid, cls, with_keys(SD15, prediction_type="v_prediction"), 10, {}
    yield f"{sid}/sample_prediction/10", sid, cls, with_keys(SD15, prediction_type="sample"), 10, {}
    yield f"{sid}/leading/10", sid, cls, with_keys(SD15, timestep_spacing="leading"), 10, {}
    yield f"{sid}/trailing/10", sid, cls, with_keys(SD15, timestep_spacing="trailing"), 10, {}
    yield f"{sid}/order1/10", sid, cls, with_keys(SD15, solver_order=1), 10, {}
    yield f"{sid}/order3/10", sid, cls, with_keys(SD15, solver_order=3), 10, {}
    yield f"{sid}/order3/25", sid, cls, with_keys(SD15, solver_order=3), 25, {}
    # UniPC's bh1 and noise-prediction updates and its order-2 final step reach σ = 0 as inf in diffusers: end at σmin.
    final = {"final_sigmas_type": "sigma_min"} if sid == "unipc" else {}
    yield f"{sid}/no_lower_order_final/10", sid, cls, with_keys(SD15, lower_order_final=False, **final), 10, {}
    yield f"{sid}/karras/10", sid, cls, with_keys(SD15, use_karras_sigmas=True), 10, {}
    yield f"{sid}/karras/25", sid, cls, with_keys(SD15, use_karras_sigmas=True), 25, {}
    if zero_snr:
        zero = with_keys(SD15, rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction")
        yield f"{sid}/zero_snr/10", sid, cls, zero, 10, {}


def cases_0_31():
    yield from k_diffusion_cases("heun", "HeunDiscreteScheduler", seeded=False, sample_prediction=True)
    yield "heun/clip/10", "heun", "HeunDiscreteScheduler", with_keys(SD15, clip_sample=True, clip_sample_range=0.5), 10, {}
    yield from k_diffusion_cases("dpm2", "KDPM2DiscreteScheduler", seeded=False, sample_prediction=False)
    yield from k_diffusion_cases("dpm2_a", "KDPM2AncestralDiscreteScheduler", seeded=True, sample_prediction=False)
    yield "dpm2_a/seeded/10", "dpm2_a", "KDPM2AncestralDiscreteScheduler", SD15, 10, {"seed": 1234}

    dpm = "DPMSolverMultistepScheduler"
    yield "dpmpp_2m_sde/sd15/10", "dpmpp_2m_sde", dpm, with_keys(SD15, algorithm_type="sde-dpmsolver++"), 10, {"seed": 3}
    yield "dpmpp_2m_sde/sd15/25", "dpmpp_2m_sde", dpm, with_keys(SD15, algorithm_type="sde-dpmsolver++"), 25, {"seed": 4}
    yield ("dpmpp_2m_sde_karras/sd15/10", "dpmpp_2m_sde_karras", dpm,
           with_keys(SD15, algorithm_type="sde-dpmsolver++", use_karras_sigmas=True), 10, {"seed": 5})

    yield from multistep_cases("unipc", "UniPCMultistepScheduler", zero_snr=True)
    yield "unipc/bh1/10", "unipc", "UniPCMultistepScheduler", with_keys(SD15, solver_type="bh1", final_sigmas_type="sigma_min"), 10, {}
    yield "unipc/bh1_order3/25", "unipc", "UniPCMultistepScheduler", with_keys(SD15, solver_type="bh1", solver_order=3, final_sigmas_type="sigma_min"), 25, {}
    yield "unipc/predict_noise/10", "unipc", "UniPCMultistepScheduler", with_keys(SD15, predict_x0=False, final_sigmas_type="sigma_min"), 10, {}
    yield "unipc/disable_corrector/10", "unipc", "UniPCMultistepScheduler", with_keys(SD15, disable_corrector=[0, 3]), 10, {}
    yield "unipc/sigma_min_final/10", "unipc", "UniPCMultistepScheduler", with_keys(SD15, final_sigmas_type="sigma_min"), 10, {}
    yield from multistep_cases("deis", "DEISMultistepScheduler", zero_snr=False)

    ddpm = "DDPMScheduler"
    for steps in (1, 10, 25):
        yield f"ddpm/sd15/{steps}", "ddpm", ddpm, SD15, steps, {"seed": 100 + steps}
    yield "ddpm/class_defaults/10", "ddpm", ddpm, {}, 10, {"seed": 8}
    yield "ddpm/v_prediction/10", "ddpm", ddpm, with_keys(SD15, prediction_type="v_prediction"), 10, {"seed": 9}
    yield "ddpm/sample_prediction/10", "ddpm", ddpm, with_keys(SD15, prediction_type="sample"), 10, {"seed": 10}
    yield "ddpm/linspace/10", "ddpm", ddpm, with_keys(SD15, timestep_spacing="linspace"), 10, {"seed": 11}
    yield "ddpm/trailing/10", "ddpm", ddpm, with_keys(SD15, timestep_spacing="trailing"), 10, {"seed": 12}
    yield "ddpm/clip/10", "ddpm", ddpm, with_keys(SD15, clip_sample=True, clip_sample_range=0.7), 10, {"seed": 13}
    # fixed_large_log is a log-variance for learned_range; step takes its square root and gives NaN, so it is left out.
    for variance in ("fixed_small_log", "fixed_large"):
        yield f"ddpm/{variance}/10", "ddpm", ddpm, with_keys(SD15, variance_type=variance), 10, {"seed": 14}
    zero = with_keys(SD15, rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction")
    yield "ddpm/zero_snr/10", "ddpm", ddpm, zero, 10, {"seed": 15}

    single = "DPMSolverSinglestepScheduler"
    for steps in (1, 4, 10, 25):
        yield f"dpmpp_2s/sd15/{steps}", "dpmpp_2s", single, SD15, steps, {}
    yield "dpmpp_2s/class_defaults/10", "dpmpp_2s", single, {}, 10, {}
    yield "dpmpp_2s/v_prediction/10", "dpmpp_2s", single, with_keys(SD15, prediction_type="v_prediction"), 10, {}
    yield "dpmpp_2s/sample_prediction/10", "dpmpp_2s", single, with_keys(SD15, prediction_type="sample"), 10, {}
    yield "dpmpp_2s/order1/10", "dpmpp_2s", single, with_keys(SD15, solver_order=1), 10, {}
    yield "dpmpp_2s/order3/10", "dpmpp_2s", single, with_keys(SD15, solver_order=3), 10, {}
    yield "dpmpp_2s/order3/25", "dpmpp_2s", single, with_keys(SD15, solver_order=3), 25, {}
    yield "dpmpp_2s/lower_order_final/10", "dpmpp_2s", single, with_keys(SD15, lower_order_final=True), 10, {}
    # lower_order_final stays off only with a positive final sigma and whole groups; 9 steps switch it on.
    for steps in (10, 9):
        yield (f"dpmpp_2s/no_lower_order_final/{steps}", "dpmpp_2s", single,
               with_keys(SD15, final_sigmas_type="sigma_min"), steps, {})
    yield ("dpmpp_2s/order3_no_lower_order_final/12", "dpmpp_2s", single,
           with_keys(SD15, solver_order=3, solver_type="heun", final_sigmas_type="sigma_min"), 12, {})
    yield "dpmpp_2s/heun/10", "dpmpp_2s", single, with_keys(SD15, solver_type="heun"), 10, {}
    yield "dpmpp_2s/karras/10", "dpmpp_2s", single, with_keys(SD15, use_karras_sigmas=True), 10, {}
    yield ("dpmpp_2s/dpmsolver/10", "dpmpp_2s", single,
           with_keys(SD15, algorithm_type="dpmsolver", final_sigmas_type="sigma_min"), 10, {})
    yield "dpmpp_sde/sd15/10", "dpmpp_sde", single, with_keys(SD15, algorithm_type="sde-dpmsolver++"), 10, {"seed": 31}
    yield "dpmpp_sde/sd15/25", "dpmpp_sde", single, with_keys(SD15, algorithm_type="sde-dpmsolver++"), 25, {"seed": 32}

    for sid, cls in (("lcm", "LCMScheduler"), ("tcd", "TCDScheduler")):
        extra = {"seed": 41}
        for steps in (1, 2, 4, 8):
            yield f"{sid}/sd15/{steps}", sid, cls, SD15, steps, extra
        yield f"{sid}/class_defaults/4", sid, cls, {}, 4, extra
        yield f"{sid}/v_prediction/4", sid, cls, with_keys(SD15, prediction_type="v_prediction"), 4, extra
        yield f"{sid}/sample_prediction/4", sid, cls, with_keys(SD15, prediction_type="sample"), 4, extra
        yield f"{sid}/clip/4", sid, cls, with_keys(SD15, clip_sample=True, clip_sample_range=0.6), 4, extra
        yield f"{sid}/original_steps_20/6", sid, cls, with_keys(SD15, original_inference_steps=20), 6, extra
        yield f"{sid}/timestep_scaling/4", sid, cls, with_keys(SD15, timestep_scaling=2.5), 4, extra
        yield f"{sid}/zero_snr/4", sid, cls, with_keys(SD15, rescale_betas_zero_snr=True, prediction_type="v_prediction"), 4, extra
    for eta in (0.0, 0.3, 1.0):
        yield f"tcd/eta{eta}/4", "tcd", "TCDScheduler", SD15, 4, {"seed": 42, "eta": eta}

    euler = "EulerDiscreteScheduler"
    for steps in (10, 25):
        yield f"euler_exponential/sd15/{steps}", "euler_exponential", euler, with_keys(SD15, use_exponential_sigmas=True), steps, {}
        yield f"euler_beta/sd15/{steps}", "euler_beta", euler, with_keys(SD15, use_beta_sigmas=True), steps, {}
    yield ("euler_beta/bounds/10", "euler_beta", euler, with_keys(SD15, use_beta_sigmas=True, sigma_min=0.1, sigma_max=10.0),
           10, {})


def cases_0_32():
    dpm = "DPMSolverMultistepScheduler"
    sde3 = with_keys(SD15, algorithm_type="sde-dpmsolver++", solver_order=3)
    for steps in (4, 10, 25):
        yield f"dpmpp_3m_sde/sd15/{steps}", "dpmpp_3m_sde", dpm, sde3, steps, {"seed": 50 + steps}
    yield "dpmpp_3m_sde/v_prediction/10", "dpmpp_3m_sde", dpm, with_keys(sde3, prediction_type="v_prediction"), 10, {"seed": 7}
    yield "dpmpp_3m_sde_karras/sd15/25", "dpmpp_3m_sde_karras", dpm, with_keys(sde3, use_karras_sigmas=True), 25, {"seed": 8}
    for steps in (10, 25):
        yield f"dpmpp_2m_exponential/sd15/{steps}", "dpmpp_2m_exponential", dpm, with_keys(SD15, use_exponential_sigmas=True), steps, {}
        yield f"dpmpp_2m_beta/sd15/{steps}", "dpmpp_2m_beta", dpm, with_keys(SD15, use_beta_sigmas=True), steps, {}


def main():
    torch.set_num_threads(1)
    version = diffusers.__version__
    if version == "0.31.0":
        cases, file_name = cases_0_31(), "diffusers_reference_more.json"
    elif version == "0.32.0":
        cases, file_name = cases_0_32(), "diffusers_reference_0_32.json"
    else:
        sys.exit(f"diffusers {version}: run this with v0.31.0 and with v0.32.0 (see the docstring).")
    data = {
        "source": "tools/scheduler_reference/generate_more.py",
        "diffusers_version": version,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "shape": list(base.SHAPE),
        "tracked": base.TRACKED,
        "cases": [run_case(name, sid, cls, config, steps, **extra) for name, sid, cls, config, steps, extra in cases],
    }
    out = os.path.join(OUT_DIR, file_name)
    with open(out, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(data['cases'])} cases, {os.path.getsize(out)} bytes → {os.path.relpath(out)}", file=sys.stderr)


if __name__ == "__main__":
    main()
