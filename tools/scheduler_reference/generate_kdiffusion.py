#!/usr/bin/env python3
"""Reference numbers for "DPM++ 2S a" (dpmpp_2s_a), which diffusers does not have: k-diffusion's own
sample_dpmpp_2s_ancestral, the function AUTOMATIC1111 runs for that name.

k-diffusion's package imports torchsde, torchdiffeq and more that are not installed here, so the script takes
k_diffusion/sampling.py from a k-diffusion checkout and executes exactly four of its functions (get_ancestral_step, to_d,
default_noise_sampler, sample_dpmpp_2s_ancestral), unchanged, from their source text. The sigma schedule is diffusers
v0.31.0's EulerDiscreteScheduler one for the case's config (what the engine's class uses); the model is the
formula model of generate.py in k-diffusion's denoiser form (CompVisDenoiser with epsilon prediction):
    scaled = x / (σ² + 1)^½,  ε = 0.6·scaled + float32(0.3·cos(0.23·k + 0.5·i)) at evaluation i,  denoised = x − σ·ε
Initial x: float32(sin(0.37·k + 1)) · init_noise_sigma; the noise is torch.randn_like after torch.manual_seed(seed).
Stored: the sigma of every model evaluation, x at the start of every step (k-diffusion's callback) at generate.TRACKED,
and the final x.

    git clone https://github.com/crowsonkb/k-diffusion && git -C k-diffusion checkout 4601bf0
    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src:tools/scheduler_reference \
        /usr/bin/python3 tools/scheduler_reference/generate_kdiffusion.py k-diffusion/k_diffusion/sampling.py
writes tests/LocalDiffusion.Tests/TestData/Schedulers/kdiffusion_dpmpp_2s_ancestral.json.
"""
import ast
import os
import sys

import json
import numpy as np
import torch

import diffusers
import generate as base

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "LocalDiffusion.Tests", "TestData",
                   "Schedulers", "kdiffusion_dpmpp_2s_ancestral.json")
FUNCTIONS = ["append_zero", "get_ancestral_step", "to_d", "default_noise_sampler", "sample_dpmpp_2s_ancestral"]


def load_sampler(path):
    source = open(path).read()
    namespace = {"torch": torch, "trange": lambda n, disable=None: range(n), "utils": None}
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in FUNCTIONS:
            exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"), namespace)
    missing = [f for f in FUNCTIONS if f not in namespace]
    assert not missing, missing
    # to_d uses utils.append_dims
    namespace["utils"] = type("utils", (), {"append_dims": staticmethod(lambda x, n: x[(...,) + (None,) * (n - x.ndim)])})
    return namespace["sample_dpmpp_2s_ancestral"]


def run_case(sampler, name, config, steps, seed):
    scheduler = diffusers.EulerDiscreteScheduler.from_config(config)  # Euler a lacks use_karras_sigmas in v0.31
    scheduler.set_timesteps(steps)
    sigmas = scheduler.sigmas.to(torch.float32)
    k = np.arange(base.COUNT)
    x = torch.from_numpy(np.sin(0.37 * k + 1.0).astype(np.float32)).reshape(base.SHAPE) * scheduler.init_noise_sigma
    evaluation_sigmas, starts = [], []

    def model(sample, sigma):
        i = len(evaluation_sigmas)
        sigma = sigma.reshape(-1)[0]
        evaluation_sigmas.append(float(sigma))
        scaled = sample / ((sigma ** 2 + 1) ** 0.5)
        offset = torch.from_numpy((0.3 * np.cos(0.23 * k + 0.5 * i)).astype(np.float32)).reshape(base.SHAPE)
        eps = 0.6 * scaled + offset
        return sample - sigma * eps

    torch.manual_seed(seed)
    final = sampler(model, x, sigmas, callback=lambda info: starts.append(base.f32_list(info["x"].reshape(-1).numpy()[base.TRACKED])))
    return {"name": name, "scheduler": "dpmpp_2s_a", "config": config, "steps": steps, "seed": seed,
            "evaluation_sigmas": base.f32_list(evaluation_sigmas), "step_starts": starts,
            "final": base.f32_list(final.reshape(-1).numpy())}


def main():
    torch.set_num_threads(1)
    sampler = load_sampler(sys.argv[1])
    cases = []
    for steps in (1, 4, 10, 25):
        cases.append(run_case(sampler, f"sd15/{steps}", base.SD15, steps, 40 + steps))
    cases.append(run_case(sampler, "karras/10", base.with_keys(base.SD15, use_karras_sigmas=True), 10, 7))
    cases.append(run_case(sampler, "linspace/8", base.with_keys(base.SD15, timestep_spacing="linspace"), 8, 8))
    data = {"source": "tools/scheduler_reference/generate_kdiffusion.py", "k_diffusion_commit": "4601bf0",
            "diffusers_version": diffusers.__version__, "torch_version": torch.__version__, "tracked": base.TRACKED,
            "cases": cases}
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
