#!/usr/bin/env python3
"""Final latents of diffusers' StableDiffusionXLPipeline on models/test/tiny-sdxl, for the engine's parity test.

As tools/pipeline_reference/img2img_tiny.py explains, onnxruntime for Python is not available, so the torch networks
are rebuilt as tools/build_sdxl_test_model.py builds them (tiny-sdxl's ONNX files are their export) and diffusers
v0.31.0's StableDiffusionXLPipeline steps are run, written out because importing the pipeline needs transformers:
  encode_prompt: for each (tokenizer, text encoder) pair, ids padded to 77 (tokenizer_2 pads with "!" = id 0);
    prompt_embeds = hidden_states[-2], concatenated along the feature axis; pooled_prompt_embeds = text_encoder_2's
    text_embeds; with negative_prompt None and force_zeros_for_empty_prompt, the negative embeddings are zeros;
  _get_add_time_ids: original_size + crops_coords_top_left + target_size, by default (height, width), (0, 0),
    (height, width); the negative half gets its own ids only when negative_original_size and negative_target_size are
    both given (negative_crops_coords_top_left defaulting to (0, 0)), else the prompt's (the "micro" cases set them);
  CFG: cat([negative, positive]) for prompt_embeds, add_text_embeds and add_time_ids;
  EulerDiscreteScheduler (tiny-sdxl's scheduler_config.json): latents = randn(generator) × init_noise_sigma;
    per step scale_model_input, unet, uncond + g·(cond − uncond), step.

    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src:tools /usr/bin/python3 tools/pipeline_reference/sdxl_tiny.py
writes tests/LocalDiffusion.Tests/TestData/Pipeline/diffusers_sdxl_tiny.json.
"""
import json
import os
import sys

import numpy as np
import torch

import diffusers

from build_sdxl_test_model import nets

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
OUT = os.path.join(ROOT, "tests", "LocalDiffusion.Tests", "TestData", "Pipeline", "diffusers_sdxl_tiny.json")
WIDTH, HEIGHT = 96, 64
PROMPT = "a red circle on a blue background"
# tiny's tokenizer (the same vocabulary in tokenizer/ and tokenizer_2/); see tools/pipeline_reference/lcm_tiny.py.
TOKENS = [1012, 320, 645, 918, 81, 66, 598, 523, 320, 65, 75, 84, 324, 65, 64, 66, 74, 70, 538, 542, 323, 1013]
IDS_1 = TOKENS + [1013] * (77 - len(TOKENS))  # tokenizer/ pads with <|endoftext|>
IDS_2 = TOKENS + [0] * (77 - len(TOKENS))  # tokenizer_2/ pads with "!"


def floats(t):
    return [float(str(np.float32(v))) for v in t.reshape(-1).numpy()]


def add_time_ids(micro):
    """StableDiffusionXLPipeline.__call__'s time ids from its micro-conditioning arguments (sizes are (height, width))."""
    original = tuple(micro.get("original_size", (HEIGHT, WIDTH)))
    crop = tuple(micro.get("crops_coords_top_left", (0, 0)))
    target = tuple(micro.get("target_size", (HEIGHT, WIDTH)))
    positive = list(original + crop + target)
    if micro.get("negative_original_size") is not None and micro.get("negative_target_size") is not None:
        negative = list(tuple(micro["negative_original_size"]) + tuple(micro.get("negative_crops_coords_top_left", (0, 0)))
                        + tuple(micro["negative_target_size"]))
    else:
        negative = positive
    return torch.tensor([positive], dtype=torch.float32), torch.tensor([negative], dtype=torch.float32)


@torch.no_grad()
def run(models, steps, guidance, seed, images, micro):
    te1, te2, unet, _, _ = models
    config = json.load(open(os.path.join(ROOT, "models", "test", "tiny-sdxl", "scheduler", "scheduler_config.json")))
    scheduler = diffusers.EulerDiscreteScheduler.from_config(config)
    out1 = te1(torch.tensor([IDS_1], dtype=torch.int32))
    out2 = te2(torch.tensor([IDS_2], dtype=torch.int32))
    # (last, pooled, hidden_states.0..L) and (text_embeds, last, hidden_states.0..L): hidden_states[-2] is the
    # second-to-last of the hidden_states outputs.
    prompt_embeds = torch.cat([out1[-2], out2[-2]], dim=-1).repeat(images, 1, 1)
    pooled = out2[0].repeat(images, 1)
    positive_ids, negative_ids = add_time_ids(micro)
    time_ids = positive_ids.repeat(images, 1)
    cfg = guidance > 1.0
    if cfg:
        prompt_embeds = torch.cat([torch.zeros_like(prompt_embeds), prompt_embeds])
        pooled = torch.cat([torch.zeros_like(pooled), pooled])
        time_ids = torch.cat([negative_ids.repeat(images, 1), time_ids])
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn((images, 4, HEIGHT // 8, WIDTH // 8), generator=generator, dtype=torch.float32) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = torch.cat([latents] * 2) if cfg else latents
        model_input = scheduler.scale_model_input(model_input, t)
        noise = unet(model_input, t.reshape(1).repeat(model_input.shape[0]), prompt_embeds, pooled, time_ids)
        if cfg:
            uncond, cond = noise.chunk(2)
            noise = uncond + guidance * (cond - uncond)
        latents = scheduler.step(noise, t, latents, return_dict=False)[0]
    return floats(latents), floats(torch.cat([out1[-2], out2[-2]], dim=-1)[0]), floats(out2[0][0])


def main():
    models = nets()
    cases = []
    # Non-default micro-conditioning, (height, width) and (top, left) as diffusers takes them: every value given, and
    # the prompt's values alone (the negative half then gets the same ids).
    micro_all = {"original_size": [128, 192], "crops_coords_top_left": [16, 8], "target_size": [48, 80],
                 "negative_original_size": [256, 256], "negative_crops_coords_top_left": [4, 0], "negative_target_size": [64, 96]}
    micro_positive = {"original_size": [32, 48], "crops_coords_top_left": [0, 24], "target_size": [64, 96]}
    for name, steps, guidance, seed, images, micro in [
        ("sdxl/4_steps_g5", 4, 5.0, 42, 1, {}),
        ("sdxl/3_steps_g1_batch2", 3, 1.0, 7, 2, {}),
        ("sdxl/6_steps_g7.5_batch2", 6, 7.5, 3, 2, {}),
        ("sdxl/micro_conditioning_4_steps_g5", 4, 5.0, 11, 1, micro_all),
        ("sdxl/micro_conditioning_positive_only_3_steps_g5", 3, 5.0, 12, 1, micro_positive),
    ]:
        latents, embeds, pooled = run(models, steps, guidance, seed, images, micro)
        cases.append({"name": name, "steps": steps, "guidance": guidance, "seed": seed, "images": images, "prompt": PROMPT,
                      "negative_prompt": "", "width": WIDTH, "height": HEIGHT, **micro, "final_latents": latents,
                      "prompt_embeds": embeds, "pooled_prompt_embeds": pooled})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"source": "tools/pipeline_reference/sdxl_tiny.py", "diffusers_version": diffusers.__version__,
                   "torch_version": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
