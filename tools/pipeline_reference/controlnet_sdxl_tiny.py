#!/usr/bin/env python3
"""Final latents of diffusers v0.31.0's StableDiffusionXLControlNetPipeline (text-to-image) on models/test/tiny-sdxl-controlnet.

The pipeline's steps are written out as tools/pipeline_reference/controlnet_tiny.py does for SD 1.x (importing the pipeline
needs transformers), with SDXL's conditioning as tools/pipeline_reference/sdxl_tiny.py computes it for tiny-sdxl's text
encoders (hidden_states[-2] of both, text_encoder_2's text_embeds, zeros for the empty negative prompt, time ids
(64, 96, 0, 0, 64, 96) for both halves) and the networks of tools/build_controlnet_sdxl_test_model.py. The ControlNet
gets the UNet's added_cond_kwargs (text_embeds, time_ids); in guess mode with CFG only their conditional rows.
Control picture: ControlNetParityTests' A, (5x + 11y + 70c) mod 256, at 96×64; Euler (tiny-sdxl's config).

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src:tools /usr/bin/python3 tools/pipeline_reference/controlnet_sdxl_tiny.py
writes tests/LocalDiffusion.Tests/TestData/Pipeline/diffusers_controlnet_sdxl_tiny.json.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import build_controlnet_sdxl_test_model as built  # noqa: E402  (installs the safetensors stand-in first)
import diffusers  # noqa: E402
from build_sdxl_test_model import nets as sdxl_nets  # noqa: E402
from controlnet_tiny import picture  # noqa: E402
from sdxl_tiny import IDS_1, IDS_2, PROMPT, ROOT, floats  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "tests", "LocalDiffusion.Tests", "TestData", "Pipeline", "diffusers_controlnet_sdxl_tiny.json")
WIDTH, HEIGHT = 96, 64


@torch.no_grad()
def run(te1, te2, unet, controlnet, case):
    guess, guidance, scale = case["guess_mode"], case["guidance"], case["scale"]
    config = json.load(open(os.path.join(ROOT, "models", "test", "tiny-sdxl", "scheduler", "scheduler_config.json")))
    scheduler = diffusers.EulerDiscreteScheduler.from_config(config)
    out1 = te1(torch.tensor([IDS_1], dtype=torch.int32))
    out2 = te2(torch.tensor([IDS_2], dtype=torch.int32))
    embeds = torch.cat([out1[-2], out2[-2]], dim=-1)
    pooled = out2[0]
    embeds = torch.cat([torch.zeros_like(embeds), embeds])
    pooled = torch.cat([torch.zeros_like(pooled), pooled])
    time_ids = torch.tensor([[HEIGHT, WIDTH, 0, 0, HEIGHT, WIDTH]] * 2, dtype=torch.float32)
    image = picture("A")
    if not guess:
        image = torch.cat([image, image])
    scheduler.set_timesteps(case["steps"])
    timesteps = scheduler.timesteps
    generator = torch.Generator().manual_seed(case["seed"])
    latents = torch.randn((1, 4, HEIGHT // 8, WIDTH // 8), generator=generator, dtype=torch.float32) * scheduler.init_noise_sigma
    n = len(timesteps)
    for i, t in enumerate(timesteps):
        model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        t2 = torch.full((2,), int(t), dtype=torch.int64)
        added = {"text_embeds": pooled, "time_ids": time_ids}
        if guess:
            c_input, c_embeds, c_t = scheduler.scale_model_input(latents, t), embeds[1:], t2[1:]
            c_added = {"text_embeds": pooled[1:], "time_ids": time_ids[1:]}
        else:
            c_input, c_embeds, c_t, c_added = model_input, embeds, t2, added
        keep = 1.0 - float(i / n < case["start"] or (i + 1) / n > case["end"])
        down, mid = controlnet(c_input, c_t, c_embeds, image, conditioning_scale=scale * keep, guess_mode=guess,
                               added_cond_kwargs=c_added, return_dict=False)
        if guess:
            down = [torch.cat([torch.zeros_like(d), d]) for d in down]
            mid = torch.cat([torch.zeros_like(mid), mid])
        noise = unet(model_input, t2, embeds, added_cond_kwargs=added, down_block_additional_residuals=down,
                     mid_block_additional_residual=mid, return_dict=False)[0]
        uncond, cond = noise.chunk(2)
        latents = scheduler.step(uncond + guidance * (cond - uncond), t, latents, return_dict=False)[0]
    return floats(latents)


def main():
    torch.set_num_threads(1)
    te1, te2, _, _, _ = sdxl_nets()
    unet, controlnet = built.nets()
    cases = [
        {"name": "sdxl/one", "steps": 5, "guidance": 5.0, "seed": 42, "scale": 0.8, "start": 0.0, "end": 1.0, "guess_mode": False},
        {"name": "sdxl/window_guess", "steps": 6, "guidance": 5.0, "seed": 7, "scale": 1.0, "start": 0.0, "end": 0.5, "guess_mode": True},
    ]
    for case in cases:
        case.update({"model": "tiny-sdxl-controlnet", "prompt": PROMPT, "width": WIDTH, "height": HEIGHT})
        case["final_latents"] = run(te1, te2, unet, controlnet, case)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"source": "tools/pipeline_reference/controlnet_sdxl_tiny.py", "diffusers_version": diffusers.__version__,
                   "torch_version": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
