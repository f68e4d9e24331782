#!/usr/bin/env python3
"""Final latents of diffusers' SDXL base → refiner hand-off ("ensemble of expert denoisers") on models/test/tiny-sdxl
and models/test/tiny-sdxl-refiner, for the engine's parity test.

As tools/pipeline_reference/img2img_tiny.py explains, onnxruntime for Python is not available, so the torch networks
are rebuilt as the model builders build them and diffusers v0.31.0's steps are run, written out:
  base, StableDiffusionXLPipeline(denoising_end=f, output_type="latent"): encode_prompt and time ids as in
    tools/pipeline_reference/sdxl_tiny.py; latents = randn(generator) × init_noise_sigma; after set_timesteps(steps),
    cutoff = int(round(T − f·T)) and only the timesteps ≥ cutoff are run;
  refiner, StableDiffusionXLImg2ImgPipeline(image=those latents, denoising_start=f) with the same generator object:
    encoding and aesthetic time ids as in tools/pipeline_reference/sdxl_refiner_tiny.py; set_timesteps(steps), the
    timesteps < cutoff are run (one more when a second-order scheduler would stop between its two evaluations),
    set_begin_index(len − count); the latents go in as they are (prepare_latents: 4 channels → no VAE, no add_noise).
Each half uses the scheduler class of the case built from its own folder's scheduler_config.json.

    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src:tools:tools/pipeline_reference /usr/bin/python3 tools/pipeline_reference/sdxl_handoff_tiny.py
writes tests/LocalDiffusion.Tests/TestData/Pipeline/diffusers_sdxl_handoff_tiny.json.
"""
import json
import os
import sys

import torch

import diffusers

import build_sdxl_refiner_test_model
import build_sdxl_test_model
from sdxl_refiner_tiny import EMPTY_IDS, IDS as REFINER_IDS
from sdxl_tiny import HEIGHT, IDS_1, IDS_2, PROMPT, WIDTH, floats

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
OUT = os.path.join(ROOT, "tests", "LocalDiffusion.Tests", "TestData", "Pipeline", "diffusers_sdxl_handoff_tiny.json")
CLASSES = {"euler": "EulerDiscreteScheduler", "euler_a": "EulerAncestralDiscreteScheduler", "dpmpp_2m": "DPMSolverMultistepScheduler"}


def scheduler(folder, name):
    config = json.load(open(os.path.join(ROOT, "models", "test", folder, "scheduler", "scheduler_config.json")))
    return getattr(diffusers, CLASSES[name]).from_config(config)


def cutoff(s, fraction):
    t = s.config.num_train_timesteps
    return int(round(t - fraction * t))


def denoise(unet, s, timesteps, latents, embeds, pooled, time_ids, guidance, generator):
    cfg = guidance > 1.0
    for t in timesteps:
        model_input = torch.cat([latents] * 2) if cfg else latents
        model_input = s.scale_model_input(model_input, t)
        noise = unet(model_input, t.reshape(1).repeat(model_input.shape[0]), embeds, pooled, time_ids)
        if cfg:
            uncond, cond = noise.chunk(2)
            noise = uncond + guidance * (cond - uncond)
        latents = s.step(noise, t, latents, generator=generator, return_dict=False)[0]
    return latents


@torch.no_grad()
def run(base, refiner, name, steps, fraction, guidance, seed, images):
    te1, te2, unet, _, _ = base
    cfg = guidance > 1.0
    out1 = te1(torch.tensor([IDS_1], dtype=torch.int32))
    out2 = te2(torch.tensor([IDS_2], dtype=torch.int32))
    embeds = torch.cat([out1[-2], out2[-2]], dim=-1).repeat(images, 1, 1)
    pooled = out2[0].repeat(images, 1)
    time_ids = torch.tensor([[HEIGHT, WIDTH, 0, 0, HEIGHT, WIDTH]], dtype=torch.float32).repeat(images, 1)
    if cfg:  # force_zeros_for_empty_prompt: the negative half is zeros
        embeds = torch.cat([torch.zeros_like(embeds), embeds])
        pooled = torch.cat([torch.zeros_like(pooled), pooled])
        time_ids = torch.cat([time_ids, time_ids])
    s = scheduler("tiny-sdxl", name)
    s.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn((images, 4, HEIGHT // 8, WIDTH // 8), generator=generator, dtype=torch.float32) * s.init_noise_sigma
    cut = cutoff(s, fraction)
    base_steps = len([t for t in s.timesteps if t >= cut])
    latents = denoise(unet, s, s.timesteps[:base_steps], latents, embeds, pooled, time_ids, guidance, generator)
    handed = latents.clone()

    r_te2, r_unet, _, _ = refiner
    out = r_te2(torch.tensor([REFINER_IDS], dtype=torch.int32))
    embeds = out[-2].repeat(images, 1, 1)
    pooled = out[0].repeat(images, 1)
    time_ids = torch.tensor([[HEIGHT, WIDTH, 0, 0, 6.0]], dtype=torch.float32).repeat(images, 1)
    if cfg:  # the refiner's force_zeros_for_empty_prompt is false: "" is encoded
        neg = r_te2(torch.tensor([EMPTY_IDS], dtype=torch.int32))
        embeds = torch.cat([neg[-2].repeat(images, 1, 1), embeds])
        pooled = torch.cat([neg[0].repeat(images, 1), pooled])
        time_ids = torch.cat([torch.tensor([[HEIGHT, WIDTH, 0, 0, 2.5]]).repeat(images, 1), time_ids])
    s = scheduler("tiny-sdxl-refiner", name)
    s.set_timesteps(steps)
    cut = cutoff(s, fraction)
    count = int((s.timesteps < cut).sum().item())
    if s.order == 2 and count % 2 == 0:
        count += 1
    begin = len(s.timesteps) - count
    s.set_begin_index(begin)
    latents = denoise(r_unet, s, s.timesteps[begin:], latents, embeds, pooled, time_ids, guidance, generator)
    return floats(latents), floats(handed), base_steps, count


def main():
    base, refiner = build_sdxl_test_model.nets(), build_sdxl_refiner_test_model.nets()
    cases = []
    for name, steps, fraction, guidance, seed, images in [
        ("euler", 10, 0.8, 5.0, 42, 1),
        ("euler_a", 8, 0.7, 7.5, 3, 2),
        ("dpmpp_2m", 12, 0.75, 1.0, 7, 1),
    ]:
        latents, handed, base_steps, refiner_steps = run(base, refiner, name, steps, fraction, guidance, seed, images)
        cases.append({"name": f"handoff/{name}_{steps}_steps_at_{fraction}_g{guidance}_batch{images}", "scheduler": name,
                      "steps": steps, "switch_at": fraction, "guidance": guidance, "seed": seed, "images": images,
                      "prompt": PROMPT, "negative_prompt": "", "width": WIDTH, "height": HEIGHT,
                      "base_steps": base_steps, "refiner_steps": refiner_steps,
                      "handed_latents": handed, "final_latents": latents})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"source": "tools/pipeline_reference/sdxl_handoff_tiny.py", "diffusers_version": diffusers.__version__,
                   "torch_version": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
