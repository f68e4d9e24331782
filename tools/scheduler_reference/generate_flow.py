#!/usr/bin/env python3
"""Reference numbers for LocalDiffusion's flow-matching schedulers, produced by diffusers v0.31.0 itself.

Runs diffusers' FlowMatchEulerDiscreteScheduler and FlowMatchHeunDiscreteScheduler (SD3's and FLUX.1's schedulers) for
several configs and records what set_timesteps gives (timesteps, sigmas) and a full sampling run on inputs the C# tests
recreate from formulas, as generate.py does (k = 0..63, a [1, 16, 2, 2] latent: 16 channels as SD3/FLUX):
    initial sample   x_k = float32(sin(0.37·k + 1))            (init noise sigma 1: the flow pipelines never scale it)
    model output     v_k = 0.6 · x_k + float32(0.3 · cos(0.23·k + 0.5·i))  at evaluation i (no scale_model_input: the
                     flow schedulers have none, the model sees the sample as it is)
Cases:
  * static shift (SD3: shift 3.0; class default 1.0; 1.7, whose shift − 1 is inexact in float32), 1, 4, 28 steps;
  * dynamic shifting (FLUX.1-dev's config) with μ from diffusers' calculate_shift for FLUX's token counts of 256² (256
    tokens), 512² (1024), 1024² (4096) and a non-square 768×1360 (48·85 = 4080), both with set_timesteps(n, mu=μ) and with
    FLUX's own ramp sigmas = np.linspace(1.0, 1/n, n) passed in (what FluxPipeline does), 1, 4, 28 steps;
  * FLUX.1-schnell's config (no dynamic shifting, shift 1.0) driven as FluxPipeline drives it: its ramp and a μ, ignored;
  * Heun at shift 1.0 and 3.0, 1, 4, 28 steps (2n − 1 evaluations);
  * img2img: get_timesteps as StableDiffusion3Img2ImgPipeline / FluxImg2ImgPipeline compute it (t_start =
    int(max(n − min(n·strength, n), 0)), set_begin_index(t_start·order)), scale_noise(x0, timesteps[:1], noise) with
    x0_k = float32(sin(0.37·k + 1)) and noise_k = float32(cos(0.53·k + 0.2)), then the remaining steps.
  * calculate_shift(n, 256, 4096, 0.5, 1.15) for several n: the function is read out of diffusers' pipeline_flux.py with
    ast and executed alone, because importing that module needs transformers, which is not installable here.
Stored per run: the sample after every step at TRACKED, and the whole final sample. Floats are written as the shortest
decimal that round-trips their float32 value (calculate_shift's results as float64 reprs).

    mkdir -p /tmp/diffusers && git -C diffusers archive v0.31.0 | tar -x -C /tmp/diffusers   (a diffusers checkout)
    mkdir -p /tmp/hfhub && git -C huggingface_hub archive v0.25.2 src | tar -x -C /tmp/hfhub
    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/scheduler_reference/generate_flow.py
writes tests/LocalDiffusion.Tests/TestData/Schedulers/diffusers_flow.json (about a second).
"""
import ast
import json
import os
import sys

import numpy as np
import torch

import diffusers
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler

SHAPE = (1, 16, 2, 2)
COUNT = 64
TRACKED = [0, 9, 18, 27, 36, 45, 54, 63]
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "LocalDiffusion.Tests", "TestData", "Schedulers", "diffusers_flow.json")

# stabilityai/stable-diffusion-3-medium-diffusers scheduler/scheduler_config.json.
SD3 = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.29.0.dev0", "num_train_timesteps": 1000,
       "shift": 3.0}
# black-forest-labs/FLUX.1-dev and FLUX.1-schnell scheduler/scheduler_config.json.
FLUX_DEV = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.30.0.dev0", "base_image_seq_len": 256,
            "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 3.0,
            "use_dynamic_shifting": True}
FLUX_SCHNELL = dict(FLUX_DEV, shift=1.0, use_dynamic_shifting=False)
SD3_HEUN = dict(SD3, _class_name="FlowMatchHeunDiscreteScheduler")
CLASSES = {"flow_euler": FlowMatchEulerDiscreteScheduler, "flow_heun": FlowMatchHeunDiscreteScheduler}
TOKENS = {"256x256": 256, "512x512": 1024, "1024x1024": 4096, "768x1360": 48 * 85}


def load_calculate_shift():
    path = os.path.join(os.path.dirname(diffusers.__file__), "pipelines", "flux", "pipeline_flux.py")
    with open(path) as f:
        tree = ast.parse(f.read())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "calculate_shift")
    namespace = {}
    exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"), namespace)
    return namespace["calculate_shift"]


calculate_shift = load_calculate_shift()


def f32(value):
    return float(str(np.float32(value)))


def f32_list(values):
    return [f32(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def formula(fn):
    k = np.arange(COUNT)
    return torch.from_numpy(fn(k).astype(np.float32)).reshape(SHAPE)


def mu_for(tokens, config):
    return calculate_shift(tokens, config["base_image_seq_len"], config["max_image_seq_len"], config["base_shift"],
                           config["max_shift"])


def run_case(name, sid, config, steps, mu=None, flux_sigmas=False, strength=None):
    scheduler = CLASSES[sid].from_config(config)
    sigmas_in = np.linspace(1.0, 1 / steps, steps) if flux_sigmas else None
    kwargs = {}
    if sigmas_in is not None:
        kwargs["sigmas"] = sigmas_in
    if mu is not None:
        kwargs["mu"] = mu
    scheduler.set_timesteps(steps, **kwargs)
    timesteps = scheduler.timesteps
    case = {"name": name, "scheduler": sid, "class": type(scheduler).__name__, "config": config, "steps": steps, "mu": mu,
            "flux_sigmas": flux_sigmas, "strength": strength,
            "timesteps": f32_list(timesteps.numpy()), "sigmas": f32_list(scheduler.sigmas.numpy())}
    begin = 0
    if strength is None:
        sample = formula(lambda k: np.sin(0.37 * k + 1.0))
    else:
        init_timestep = min(steps * strength, steps)
        t_start = int(max(steps - init_timestep, 0))
        begin = t_start * scheduler.order
        timesteps = scheduler.timesteps[begin:]
        scheduler.set_begin_index(begin)
        x0 = formula(lambda k: np.sin(0.37 * k + 1.0))
        noise = formula(lambda k: np.cos(0.53 * k + 0.2))
        sample = scheduler.scale_noise(x0, timesteps[:1], noise)
        case["begin_index"] = begin
        case["noised"] = f32_list(sample.reshape(-1).numpy())
    k = np.arange(COUNT)
    trajectory = []
    for j, t in enumerate(timesteps):
        i = begin + j
        offset = torch.from_numpy((0.3 * np.cos(0.23 * k + 0.5 * i)).astype(np.float32)).reshape(SHAPE)
        model_output = 0.6 * sample + offset
        sample = scheduler.step(model_output, t, sample).prev_sample
        trajectory.append(f32_list(sample.reshape(-1).numpy()[TRACKED]))
    case["trajectory"] = trajectory
    case["final"] = f32_list(sample.reshape(-1).numpy())
    return case


def cases():
    for steps in (1, 4, 28):
        for shift in (1.0, 3.0, 1.7):
            config = dict(SD3, shift=shift)
            yield dict(name=f"flow_euler/shift{shift}/{steps}", sid="flow_euler", config=config, steps=steps)
            if shift != 1.7:
                yield dict(name=f"flow_heun/shift{shift}/{steps}", sid="flow_heun", config=dict(SD3_HEUN, shift=shift),
                           steps=steps)
        for size, tokens in TOKENS.items():
            mu = mu_for(tokens, FLUX_DEV)
            yield dict(name=f"flow_euler/dynamic_{size}/{steps}", sid="flow_euler", config=FLUX_DEV, steps=steps, mu=mu)
            yield dict(name=f"flow_euler/flux_dev_{size}/{steps}", sid="flow_euler", config=FLUX_DEV, steps=steps, mu=mu,
                       flux_sigmas=True)
        yield dict(name=f"flow_euler/flux_schnell/{steps}", sid="flow_euler", config=FLUX_SCHNELL, steps=steps,
                   mu=mu_for(4096, FLUX_SCHNELL), flux_sigmas=True)
    yield dict(name="flow_euler/shift3.0_flux_sigmas/8", sid="flow_euler", config=SD3, steps=8, flux_sigmas=True)
    yield dict(name="flow_euler/class_defaults/10", sid="flow_euler", config={}, steps=10)
    yield dict(name="flow_heun/class_defaults/10", sid="flow_heun", config={}, steps=10)
    for strength in (0.6, 0.3, 1.0):
        yield dict(name=f"flow_euler/sd3_img2img_{strength}/28", sid="flow_euler", config=SD3, steps=28, strength=strength)
        yield dict(name=f"flow_heun/sd3_img2img_{strength}/10", sid="flow_heun", config=SD3_HEUN, steps=10, strength=strength)
    yield dict(name="flow_euler/flux_dev_img2img_0.6/28", sid="flow_euler", config=FLUX_DEV, steps=28,
               mu=mu_for(1024, FLUX_DEV), flux_sigmas=True, strength=0.6)
    yield dict(name="flow_euler/flux_schnell_img2img_0.5/4", sid="flow_euler", config=FLUX_SCHNELL, steps=4,
               mu=mu_for(256, FLUX_SCHNELL), flux_sigmas=True, strength=0.5)


def main():
    torch.set_num_threads(1)
    shifts = [{"image_seq_len": n, "base_seq_len": 256, "max_seq_len": 4096, "base_shift": 0.5, "max_shift": 1.15,
               "mu": calculate_shift(n, 256, 4096, 0.5, 1.15)} for n in (1, 16, 96, 256, 1024, 2000, 4080, 4096, 6144, 16384)]
    shifts.append({"image_seq_len": 1024, "base_seq_len": 256, "max_seq_len": 4096, "base_shift": 0.5, "max_shift": 1.16,
                   "mu": calculate_shift(1024)})  # the Python function's own defaults (max_shift 1.16)
    data = {
        "source": "tools/scheduler_reference/generate_flow.py",
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "shape": list(SHAPE),
        "tracked": TRACKED,
        "calculate_shift": shifts,
        "cases": [run_case(**c) for c in cases()],
    }
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(data['cases'])} cases, {os.path.getsize(OUT)} bytes -> {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
