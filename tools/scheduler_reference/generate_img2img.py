#!/usr/bin/env python3
"""Reference numbers for every built-in scheduler's add_noise and begin index, produced by diffusers v0.31.0 itself.

Each case does what StableDiffusionImg2ImgPipeline does with its scheduler (get_timesteps / prepare_latents):
    set_timesteps(n)
    init_timestep = min(int(n * strength), n);  t_start = max(n - init_timestep, 0)
    timesteps = scheduler.timesteps[t_start * scheduler.order:]
    set_begin_index(t_start * scheduler.order)        (where the class has it: all but PNDM, DDIM, DDPM)
    latents = add_noise(x0, noise, timesteps[:1])
then the remaining steps, scale_model_input + step, on inputs the C# test recreates from formulas (k = 0..63, [1,4,4,4]):
    x0           float32(sin(0.37·k + 1))
    noise        float32(cos(0.53·k + 0.2))
    model output 0.6 · scaled_k + float32(0.3 · cos(0.23·k + 0.5·i)),  i = 0, 1, … counted from the first evaluation run
Stochastic samplers get torch.Generator().manual_seed(seed) in step. Stored: the noised latents (all 64), the sample
after every step at generate.TRACKED, and the final sample. Scheduler ids are LocalDiffusion's registry ids; "overrides"
are the options the registry entry sets on top of "config" (SD 1.5's scheduler config).

Not covered: dpmpp_3m_sde(_karras) and dpmpp_2m_exponential/beta, which v0.31.0 lacks or gets wrong (generate_more.py
takes those from v0.32.0); their add_noise is DPMSolverMultistep's, covered by the dpmpp_2m cases.

    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src:tools/scheduler_reference \
        /usr/bin/python3 tools/scheduler_reference/generate_img2img.py
writes tests/LocalDiffusion.Tests/TestData/Schedulers/diffusers_img2img.json.
"""
import inspect
import json
import os
import sys

import numpy as np
import torch

import diffusers
import generate as base

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "LocalDiffusion.Tests", "TestData", "Schedulers", "diffusers_img2img.json")
KARRAS = {"use_karras_sigmas": True}
SDE = {"algorithm_type": "sde-dpmsolver++"}

# LocalDiffusion id → (diffusers class, options the registry entry sets, stochastic)
REGISTRY = {
    "pndm": ("PNDMScheduler", {}, False),
    "ddim": ("DDIMScheduler", {}, False),
    "ddpm": ("DDPMScheduler", {}, True),
    "euler": ("EulerDiscreteScheduler", {}, False),
    "euler_karras": ("EulerDiscreteScheduler", KARRAS, False),
    "euler_exponential": ("EulerDiscreteScheduler", {"use_exponential_sigmas": True}, False),
    "euler_beta": ("EulerDiscreteScheduler", {"use_beta_sigmas": True}, False),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, True),
    "lms": ("LMSDiscreteScheduler", {}, False),
    "lms_karras": ("LMSDiscreteScheduler", KARRAS, False),
    "heun": ("HeunDiscreteScheduler", {}, False),
    "heun_karras": ("HeunDiscreteScheduler", KARRAS, False),
    "dpm2": ("KDPM2DiscreteScheduler", {}, False),
    "dpm2_karras": ("KDPM2DiscreteScheduler", KARRAS, False),
    "dpm2_a": ("KDPM2AncestralDiscreteScheduler", {}, True),
    "dpm2_a_karras": ("KDPM2AncestralDiscreteScheduler", KARRAS, True),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}, False),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", KARRAS, False),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", SDE, True),
    "dpmpp_2m_sde_karras": ("DPMSolverMultistepScheduler", {**SDE, **KARRAS}, True),
    "dpmpp_2s": ("DPMSolverSinglestepScheduler", {}, False),
    "dpmpp_2s_karras": ("DPMSolverSinglestepScheduler", KARRAS, False),
    "dpmpp_sde": ("DPMSolverSinglestepScheduler", SDE, True),
    "dpmpp_sde_karras": ("DPMSolverSinglestepScheduler", {**SDE, **KARRAS}, True),
    "unipc": ("UniPCMultistepScheduler", {}, False),
    "deis": ("DEISMultistepScheduler", {}, False),
    "lcm": ("LCMScheduler", {}, True),
    "tcd": ("TCDScheduler", {}, True),
}

# (steps, strength): t_start 2 (the pipeline default 0.8), an odd t_start, the whole schedule, a short tail.
RUNS = [(10, 0.8), (25, 0.5), (4, 1.0), (7, 0.3)]


def formula(fn):
    k = np.arange(base.COUNT)
    return torch.from_numpy(fn(k).astype(np.float32)).reshape(base.SHAPE)


def run_case(sid, steps, strength, seed, eta=None):
    class_name, overrides, _ = REGISTRY[sid]
    cls = getattr(diffusers, class_name)
    scheduler = cls.from_config(base.with_keys(base.SD15, **overrides))
    scheduler.set_timesteps(steps)
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    begin = t_start * scheduler.order
    timesteps = scheduler.timesteps[begin:]
    has_begin_index = hasattr(scheduler, "set_begin_index")
    if has_begin_index:
        scheduler.set_begin_index(begin)
    x0 = formula(lambda k: np.sin(0.37 * k + 1.0))
    noise = formula(lambda k: np.cos(0.53 * k + 0.2))
    sample = scheduler.add_noise(x0, noise, timesteps[:1])
    noised = base.f32_list(sample.reshape(-1).numpy())

    kwargs = {}
    if seed is not None:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    if eta is not None:
        kwargs["eta"] = eta
    assert all(key in inspect.signature(scheduler.step).parameters for key in kwargs)
    k = np.arange(base.COUNT)
    trajectory = []
    for i, t in enumerate(timesteps):
        scaled = scheduler.scale_model_input(sample, t)
        offset = torch.from_numpy((0.3 * np.cos(0.23 * k + 0.5 * i)).astype(np.float32)).reshape(base.SHAPE)
        sample = scheduler.step(0.6 * scaled + offset, t, sample, **kwargs).prev_sample
        trajectory.append(base.f32_list(sample.reshape(-1).numpy()[base.TRACKED]))
    return {
        "name": f"{sid}/{steps}/{strength}" + (f"/eta{eta}" if eta is not None else ""),
        "scheduler": sid,
        "class": class_name,
        "config": base.SD15,
        "overrides": overrides,
        "steps": steps,
        "strength": strength,
        "begin_index": begin,
        "has_set_begin_index": has_begin_index,
        "seed": seed,
        "eta": eta,
        "timesteps": base.f32_list(timesteps.numpy()),
        "noised": noised,
        "trajectory": trajectory,
        "final": base.f32_list(sample.reshape(-1).numpy()),
    }


def main():
    torch.set_num_threads(1)
    data = {
        "source": "tools/scheduler_reference/generate_img2img.py",
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "shape": list(base.SHAPE),
        "tracked": base.TRACKED,
        "cases": [],
    }
    for sid, (_, _, stochastic) in REGISTRY.items():
        for steps, strength in RUNS:
            seed = 1000 + steps if stochastic else None
            try:
                data["cases"].append(run_case(sid, steps, strength, seed))
            except Exception as error:  # a combination diffusers itself cannot run is reported, not stored
                print(f"skipped {sid} {steps} {strength}: {type(error).__name__}: {error}", file=sys.stderr)
    data["cases"].append(run_case("ddim", 10, 0.8, 77, eta=0.5))
    data["cases"].append(run_case("tcd", 10, 0.8, 78, eta=0.7))
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(data['cases'])} cases, {os.path.getsize(OUT)} bytes → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
