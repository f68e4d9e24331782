#!/usr/bin/env python3
"""Reference numbers for LocalDiffusion's schedulers, produced by diffusers itself.

For each scheduler class and config it records what diffusers' set_timesteps gives (timesteps, sigmas,
init_noise_sigma) and the trajectory of a full sampling run: scale_model_input + step over every timestep, on
inputs the C# tests recreate without storing them:

    element k of the [1, 4, 4, 4] latents (k = 0..63, row-major):
      initial sample   x_k = float32(sin(0.37·k + 1)) · init_noise_sigma        (float32 product)
      model output     m_k = 0.6 · scaled_k + float32(0.3 · cos(0.23·k + 0.5·i))  at evaluation i,
                       where scaled = scale_model_input(sample, t_i)              (float32 ops)

Stochastic runs pass torch.Generator().manual_seed(seed) to step (one generator for the whole run).
Stored per case: the sample after every step at elements TRACKED, and the whole final sample; alphas_cumprod of the
beta schedules separately. Floats are written as the shortest decimal that round-trips their float32 value.

How to run it (the diffusers source is never committed to LocalDiffusion):
    git clone https://github.com/huggingface/diffusers && git -C diffusers archive v0.31.0 src | tar -x -C /tmp/diffusers-0.31.0
    git clone https://github.com/huggingface/huggingface_hub && git -C huggingface_hub archive v0.25.2 src | tar -x -C /tmp/hfhub-0.25.2
    apt-get install python3-torch python3-numpy python3-scipy python3-filelock python3-regex python3-requests \
        python3-tqdm python3-packaging python3-importlib-metadata python3-pil
    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src /usr/bin/python3 tools/scheduler_reference/generate.py
It writes tests/LocalDiffusion.Tests/TestData/Schedulers/diffusers_reference.json.
"""
import json
import math
import os
import sys

import numpy as np
import torch

import diffusers
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
)

SHAPE = (1, 4, 4, 4)
COUNT = 64
TRACKED = [0, 9, 18, 27, 36, 45, 54, 63]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "LocalDiffusion.Tests",
                   "TestData", "Schedulers", "diffusers_reference.json")

# The scheduler_config.json of runwayml/stable-diffusion-v1-5 (a PNDM config that other classes load via from_config).
SD15 = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}

CLASSES = {
    "pndm": PNDMScheduler,
    "ddim": DDIMScheduler,
    "euler": EulerDiscreteScheduler,
    "euler_a": EulerAncestralDiscreteScheduler,
    "lms": LMSDiscreteScheduler,
    "dpmpp_2m": DPMSolverMultistepScheduler,
}


def f32(value):
    """A Python float whose repr is the shortest decimal that round-trips the float32 value."""
    return float(str(np.float32(value)))


def f32_list(values):
    return [f32(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def run_case(name, scheduler_id, config, steps, seed=None, eta=None):
    cls = CLASSES[scheduler_id]
    if seed is None and scheduler_id == "euler_a":
        seed = 0  # Euler a always draws noise: without a seeded generator torch would use its unseeded global one
    scheduler = cls.from_config(config)
    scheduler.set_timesteps(steps)
    k = np.arange(COUNT)
    sample = torch.from_numpy(np.sin(0.37 * k + 1.0).astype(np.float32)).reshape(SHAPE)
    sample = sample * scheduler.init_noise_sigma
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    kwargs = {}
    if generator is not None:
        kwargs["generator"] = generator
    if eta is not None:
        kwargs["eta"] = eta
    trajectory = []
    for i, t in enumerate(scheduler.timesteps):
        scaled = scheduler.scale_model_input(sample, t)
        offset = torch.from_numpy((0.3 * np.cos(0.23 * k + 0.5 * i)).astype(np.float32)).reshape(SHAPE)
        model_output = 0.6 * scaled + offset
        sample = scheduler.step(model_output, t, sample, **kwargs).prev_sample
        flat = sample.reshape(-1).numpy()
        trajectory.append(f32_list(flat[TRACKED]))
    case = {
        "name": name,
        "scheduler": scheduler_id,
        "class": cls.__name__,
        "config": config,
        "steps": steps,
        "seed": seed,
        "eta": eta,
        "timesteps": f32_list(scheduler.timesteps.numpy()),
        "sigmas": f32_list(scheduler.sigmas.numpy()) if scheduler_id not in ("pndm", "ddim") else None,
        "init_noise_sigma": f32(float(scheduler.init_noise_sigma)),
        "trajectory": trajectory,
        "final": f32_list(sample.reshape(-1).numpy()),
    }
    return case


def with_keys(base, **overrides):
    config = dict(base)
    config.update(overrides)
    return config


def cases():
    empty = {}
    for sid in CLASSES:
        for steps in (1, 4, 10, 25, 50):
            yield f"{sid}/sd15/{steps}", sid, SD15, steps, {}
        yield f"{sid}/class_defaults/10", sid, empty, 10, {}
        yield f"{sid}/v_prediction/25", sid, with_keys(SD15, prediction_type="v_prediction"), 25, {}
        yield f"{sid}/trailing/25", sid, with_keys(SD15, timestep_spacing="trailing"), 25, {}
        yield f"{sid}/trailing/4", sid, with_keys(SD15, timestep_spacing="trailing"), 4, {}
        yield f"{sid}/linspace/25", sid, with_keys(SD15, timestep_spacing="linspace"), 25, {}
        yield f"{sid}/linspace/7", sid, with_keys(SD15, timestep_spacing="linspace"), 7, {}
        yield f"{sid}/squaredcos/10", sid, with_keys(SD15, beta_schedule="squaredcos_cap_v2"), 10, {}
        if sid not in ("pndm", "euler_a"):  # diffusers' PNDM and Euler a reject prediction_type "sample"
            yield f"{sid}/sample_prediction/10", sid, with_keys(SD15, prediction_type="sample"), 10, {}
        if sid in ("euler", "lms", "dpmpp_2m"):
            for steps in (10, 25):
                yield f"{sid}/karras/{steps}", sid, with_keys(SD15, use_karras_sigmas=True), steps, {}
        if sid in ("euler", "lms"):
            yield f"{sid}/exponential/10", sid, with_keys(SD15, use_exponential_sigmas=True), 10, {}
            yield f"{sid}/beta/10", sid, with_keys(SD15, use_beta_sigmas=True), 10, {}
            yield f"{sid}/beta/25", sid, with_keys(SD15, use_beta_sigmas=True), 25, {}
        if sid in ("ddim", "euler", "euler_a", "dpmpp_2m"):
            zero_snr = with_keys(SD15, rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction")
            yield f"{sid}/zero_snr/10", sid, zero_snr, 10, {}
    yield "pndm/prk/10", "pndm", with_keys(SD15, skip_prk_steps=False), 10, {}
    yield "pndm/prk_v/25", "pndm", with_keys(SD15, skip_prk_steps=False, prediction_type="v_prediction"), 25, {}
    yield "ddim/clip/10", "ddim", with_keys(SD15, clip_sample=True, clip_sample_range=0.8), 10, {}
    yield "ddim/set_alpha_to_one/10", "ddim", with_keys(SD15, set_alpha_to_one=True), 10, {}
    yield "ddim/eta1/10", "ddim", SD15, 10, {"seed": 1234, "eta": 1.0}
    yield "ddim/eta0.5/25", "ddim", SD15, 25, {"seed": 7, "eta": 0.5}
    yield "euler/sigma_min_final/10", "euler", with_keys(SD15, final_sigmas_type="sigma_min"), 10, {}
    yield "euler/karras_bounds/10", "euler", with_keys(SD15, use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0), 10, {}
    for steps in (1, 4, 10, 25):
        yield f"euler_a/seeded/{steps}", "euler_a", SD15, steps, {"seed": 42}
    yield "euler_a/seeded_trailing/10", "euler_a", with_keys(SD15, timestep_spacing="trailing"), 10, {"seed": 3}
    dpm = "dpmpp_2m"
    yield f"{dpm}/order3/25", dpm, with_keys(SD15, solver_order=3), 25, {}
    yield f"{dpm}/order3/10", dpm, with_keys(SD15, solver_order=3), 10, {}
    yield f"{dpm}/order1/10", dpm, with_keys(SD15, solver_order=1), 10, {}
    yield f"{dpm}/heun/10", dpm, with_keys(SD15, solver_type="heun"), 10, {}
    yield f"{dpm}/dpmsolver/10", dpm, with_keys(SD15, algorithm_type="dpmsolver", final_sigmas_type="sigma_min"), 10, {}
    yield f"{dpm}/dpmsolver_order3/25", dpm, with_keys(SD15, algorithm_type="dpmsolver", final_sigmas_type="sigma_min", solver_order=3), 25, {}
    yield f"{dpm}/sigma_min_final/10", dpm, with_keys(SD15, final_sigmas_type="sigma_min"), 10, {}
    yield f"{dpm}/no_lower_order_final/10", dpm, with_keys(SD15, lower_order_final=False, final_sigmas_type="sigma_min"), 10, {}
    yield f"{dpm}/euler_at_final/25", dpm, with_keys(SD15, euler_at_final=True, final_sigmas_type="sigma_min"), 25, {}
    yield f"{dpm}/karras_v/25", dpm, with_keys(SD15, use_karras_sigmas=True, prediction_type="v_prediction"), 25, {}
    yield f"{dpm}/sde/10", dpm, with_keys(SD15, algorithm_type="sde-dpmsolver++"), 10, {"seed": 11}
    yield f"{dpm}/sde_karras/25", dpm, with_keys(SD15, algorithm_type="sde-dpmsolver++", use_karras_sigmas=True), 25, {"seed": 5}
    yield f"{dpm}/sde_heun/10", dpm, with_keys(SD15, algorithm_type="sde-dpmsolver++", solver_type="heun"), 10, {"seed": 9}
    yield f"{dpm}/sde_dpmsolver/10", dpm, with_keys(SD15, algorithm_type="sde-dpmsolver", final_sigmas_type="sigma_min"), 10, {"seed": 13}
    yield f"{dpm}/lambda_min_clipped/10", dpm, with_keys(SD15, lambda_min_clipped=-5.1, timestep_spacing="linspace"), 10, {}


def alphas_cumprod_cases():
    configs = {
        "linear": {},
        "scaled_linear": {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
        "squaredcos_cap_v2": {"beta_schedule": "squaredcos_cap_v2"},
        "scaled_linear_zero_snr": {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                                   "rescale_betas_zero_snr": True},
    }
    schedulers = {name: DDIMScheduler.from_config(config) for name, config in configs.items()}
    return [{"name": name, "config": configs[name],
             "betas": f32_list(scheduler.betas.numpy()),
             "alphas_cumprod": f32_list(scheduler.alphas_cumprod.numpy())}
            for name, scheduler in schedulers.items()]


def main():
    torch.set_num_threads(1)
    data = {
        "source": "tools/scheduler_reference/generate.py",
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "shape": list(SHAPE),
        "tracked": TRACKED,
        "alphas_cumprod": alphas_cumprod_cases(),
        "cases": [],
    }
    for name, sid, config, steps, extra in cases():
        data["cases"].append(run_case(name, sid, config, steps, **extra))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(data['cases'])} cases, {os.path.getsize(OUT)} bytes → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
