#!/usr/bin/env python3
"""Final latents of diffusers' StableDiffusionXLImg2ImgPipeline on models/test/tiny-sdxl-refiner, for a parity test.

As tools/pipeline_reference/img2img_tiny.py explains, onnxruntime for Python is not available, so the torch networks
are rebuilt as tools/build_sdxl_refiner_test_model.py builds them (its ONNX files are their export) and diffusers
v0.31.0's StableDiffusionXLImg2ImgPipeline steps are run, written out (importing the pipeline needs transformers):
  encode_prompt with tokenizer_2/text_encoder_2 alone: prompt_embeds = hidden_states[-2] (48 wide), pooled = text_embeds;
    force_zeros_for_empty_prompt is false (as the refiner's), so the negative prompt "" is encoded too;
  get_timesteps: init_timestep = min(int(steps × strength), steps), t_start = steps − init_timestep, the scheduler's
    timesteps from t_start and set_begin_index(t_start);
  prepare_latents: image (RGB8 (y, x, c) = (7x + 13y + 50c) mod 256 at 96×64, to [-1, 1]) → vae encoder →
    DiagonalGaussianDistribution.sample(generator) × 0.13025, then noise = randn(generator), add_noise at timesteps[0];
  _get_add_time_ids with requires_aesthetics_score: original_size + crops_coords_top_left + (aesthetic_score,) for the
    prompt and negative_original_size + negative_crops_coords_top_left + (negative_aesthetic_score,) for the negative
    half; by default (h, w, 0, 0, 6) and (h, w, 0, 0, 2.5) (negative_original_size defaults to original_size,
    negative_crops_coords_top_left to (0, 0)); the "micro" case sets them all;
  per step: CFG pair [negative, prompt], scale_model_input, unet, uncond + g·(cond − uncond), EulerDiscrete step.

    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src:tools /usr/bin/python3 tools/pipeline_reference/sdxl_refiner_tiny.py
writes tests/LocalDiffusion.Tests/TestData/Pipeline/diffusers_sdxl_refiner_tiny.json.
"""
import json
import os
import sys

import numpy as np
import torch

import diffusers

from build_sdxl_refiner_test_model import nets

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
OUT = os.path.join(ROOT, "tests", "LocalDiffusion.Tests", "TestData", "Pipeline", "diffusers_sdxl_refiner_tiny.json")
WIDTH, HEIGHT = 96, 64
SCALING = 0.13025
PROMPT = "a red circle on a blue background"
# tokenizer_2 (tiny's vocabulary, "!" = id 0 padding); see tools/pipeline_reference/sdxl_tiny.py.
TOKENS = [1012, 320, 645, 918, 81, 66, 598, 523, 320, 65, 75, 84, 324, 65, 64, 66, 74, 70, 538, 542, 323, 1013]
IDS = TOKENS + [0] * (77 - len(TOKENS))
EMPTY_IDS = [1012, 1013] + [0] * 75


def floats(t):
    return [float(str(np.float32(v))) for v in t.reshape(-1).numpy()]


def init_image():
    y, x, c = np.meshgrid(np.arange(HEIGHT), np.arange(WIDTH), np.arange(3), indexing="ij")
    rgb = ((7 * x + 13 * y + 50 * c) % 256).astype(np.float32)
    return torch.from_numpy(rgb / 255.0 * 2.0 - 1.0).permute(2, 0, 1)[None].contiguous()


def sample_posterior(moments, generator):
    """DiagonalGaussianDistribution(moments).sample(generator), written out (diffusers.models needs safetensors)."""
    mean, logvar = torch.chunk(moments, 2, dim=1)
    std = torch.exp(0.5 * torch.clamp(logvar, -30.0, 20.0))
    return mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype)


def add_time_ids(micro):
    """StableDiffusionXLImg2ImgPipeline's aesthetic time ids from its micro-conditioning arguments ((height, width))."""
    original = tuple(micro.get("original_size", (HEIGHT, WIDTH)))
    negative_original = tuple(micro.get("negative_original_size") or original)
    positive = list(original + tuple(micro.get("crops_coords_top_left", (0, 0))) + (micro.get("aesthetic_score", 6.0),))
    negative = list(negative_original + tuple(micro.get("negative_crops_coords_top_left", (0, 0)))
                    + (micro.get("negative_aesthetic_score", 2.5),))
    return torch.tensor([positive], dtype=torch.float32), torch.tensor([negative], dtype=torch.float32)


@torch.no_grad()
def run(models, steps, strength, guidance, seed, images, micro):
    te2, unet, _, encoder = models
    config = json.load(open(os.path.join(ROOT, "models", "test", "tiny-sdxl-refiner", "scheduler", "scheduler_config.json")))
    scheduler = diffusers.EulerDiscreteScheduler.from_config(config)
    out = te2(torch.tensor([IDS], dtype=torch.int32))
    neg = te2(torch.tensor([EMPTY_IDS], dtype=torch.int32))
    prompt_embeds = out[-2].repeat(images, 1, 1)
    pooled = out[0].repeat(images, 1)
    positive_ids, negative_ids = add_time_ids(micro)
    time_ids = positive_ids.repeat(images, 1)
    cfg = guidance > 1.0
    if cfg:
        prompt_embeds = torch.cat([neg[-2].repeat(images, 1, 1), prompt_embeds])
        pooled = torch.cat([neg[0].repeat(images, 1), pooled])
        time_ids = torch.cat([negative_ids.repeat(images, 1), time_ids])
    scheduler.set_timesteps(steps)
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    timesteps = scheduler.timesteps[t_start * scheduler.order:]
    scheduler.set_begin_index(t_start * scheduler.order)
    generator = torch.Generator().manual_seed(seed)
    init = SCALING * sample_posterior(encoder(init_image()), generator)
    init = torch.cat([init] * images)
    noise = torch.randn(init.shape, generator=generator, dtype=torch.float32)
    latents = scheduler.add_noise(init, noise, timesteps[:1].repeat(images))
    for t in timesteps:
        model_input = torch.cat([latents] * 2) if cfg else latents
        model_input = scheduler.scale_model_input(model_input, t)
        noise_pred = unet(model_input, t.reshape(1).repeat(model_input.shape[0]), prompt_embeds, pooled, time_ids)
        if cfg:
            uncond, cond = noise_pred.chunk(2)
            noise_pred = uncond + guidance * (cond - uncond)
        latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
    return floats(latents), floats(out[-2][0]), floats(out[0][0])


def main():
    models = nets()
    cases = []
    # Non-default micro-conditioning ((height, width), (top, left)), every value given.
    micro = {"original_size": [256, 384], "crops_coords_top_left": [8, 16], "aesthetic_score": 7.5,
             "negative_original_size": [64, 96], "negative_crops_coords_top_left": [0, 4], "negative_aesthetic_score": 1.5}
    for name, steps, strength, guidance, seed, images, micro in [
        ("refiner/10_steps_s0.3_g5", 10, 0.3, 5.0, 42, 1, {}),
        ("refiner/8_steps_s0.6_g1_batch2", 8, 0.6, 1.0, 7, 2, {}),
        ("refiner/6_steps_s0.5_g7.5_batch2", 6, 0.5, 7.5, 3, 2, {}),
        ("refiner/micro_conditioning_6_steps_s0.5_g5", 6, 0.5, 5.0, 21, 1, micro),
    ]:
        latents, embeds, pooled = run(models, steps, strength, guidance, seed, images, micro)
        cases.append({"name": name, "steps": steps, "strength": strength, "guidance": guidance, "seed": seed, "images": images,
                      "prompt": PROMPT, "negative_prompt": "", "aesthetic_score": 6.0, "negative_aesthetic_score": 2.5,
                      **micro, "width": WIDTH, "height": HEIGHT, "final_latents": latents, "prompt_embeds": embeds,
                      "pooled_prompt_embeds": pooled})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"source": "tools/pipeline_reference/sdxl_refiner_tiny.py", "diffusers_version": diffusers.__version__,
                   "torch_version": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
