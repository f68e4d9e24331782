#!/usr/bin/env python3
"""Final latents of diffusers' LatentConsistencyModelPipeline on models/test/tiny-lcm, for the engine's parity test.

As tools/pipeline_reference/img2img_tiny.py explains, onnxruntime for Python is not available, so the torch networks
are rebuilt as tools/build_lcm_test_model.py builds them (tiny-lcm's UNet is their export) and diffusers v0.31.0's
LatentConsistencyModelPipeline steps are run with its get_guidance_scale_embedding (written out) and LCMScheduler (tiny-lcm's
scheduler_config.json): no CFG batch; latents = randn([n,4,h,w], generator) × init_noise_sigma;
w_embedding = get_guidance_scale_embedding(tensor(g − 1).repeat(n), 256); per step
model_pred = unet(latents, t, prompt_embeds, timestep_cond=w_embedding), (latents, denoised) = step(..., generator);
the result is the last step's denoised.

    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src:tools /usr/bin/python3 tools/pipeline_reference/lcm_tiny.py
writes tests/LocalDiffusion.Tests/TestData/Pipeline/diffusers_lcm_tiny.json.
"""
import json
import os
import sys

import numpy as np
import torch

import diffusers

from build_lcm_test_model import nets

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
OUT = os.path.join(ROOT, "tests", "LocalDiffusion.Tests", "TestData", "Pipeline", "diffusers_lcm_tiny.json")
WIDTH, HEIGHT = 96, 64
PROMPT = "a red circle on a blue background"
PROMPT_IDS = [1012, 320, 645, 918, 81, 66, 598, 523, 320, 65, 75, 84, 324, 65, 64, 66, 74, 70, 538, 542, 323] + [1013] * 56


def guidance_scale_embedding(w, embedding_dim):
    """LatentConsistencyModelPipeline.get_guidance_scale_embedding, written out: importing the pipeline module needs
    transformers, which is not installed here."""
    w = w * 1000.0
    half_dim = embedding_dim // 2
    emb = torch.log(torch.tensor(10000.0)) / (half_dim - 1)
    emb = torch.exp(torch.arange(half_dim, dtype=torch.float32) * -emb)
    emb = w.to(torch.float32)[:, None] * emb[None, :]
    return torch.cat([torch.sin(emb), torch.cos(emb)], dim=1)


@torch.no_grad()
def run(models, steps, guidance, seed, images):
    text_encoder, unet = models
    config = json.load(open(os.path.join(ROOT, "models", "test", "tiny-lcm", "scheduler", "scheduler_config.json")))
    scheduler = diffusers.LCMScheduler.from_config(config)
    embeddings = text_encoder(torch.tensor([PROMPT_IDS] * images, dtype=torch.int32))[0]
    scheduler.set_timesteps(steps, original_inference_steps=None)
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn((images, 4, HEIGHT // 8, WIDTH // 8), generator=generator, dtype=torch.float32) * scheduler.init_noise_sigma
    w = torch.tensor(guidance - 1).repeat(images)
    w_embedding = guidance_scale_embedding(w, 256)
    denoised = None
    for t in scheduler.timesteps:
        model_pred = unet(latents, torch.full((images,), int(t), dtype=torch.int64), embeddings, w_embedding)
        latents, denoised = scheduler.step(model_pred, t, latents, generator=generator, return_dict=False)
    return [float(str(np.float32(v))) for v in denoised.reshape(-1).numpy()], \
        [float(str(np.float32(v))) for v in w_embedding[0].numpy()]


def main():
    models = nets()
    cases = []
    for name, steps, guidance, seed, images in [
        ("lcm/4_steps", 4, 8.5, 42, 1),
        ("lcm/2_steps_g1.5_batch2", 2, 1.5, 7, 2),
        ("lcm/6_steps_g4", 6, 4.0, 3, 1),
    ]:
        latents, w_embedding = run(models, steps, guidance, seed, images)
        cases.append({"name": name, "steps": steps, "guidance": guidance, "seed": seed, "images": images, "prompt": PROMPT,
                      "width": WIDTH, "height": HEIGHT, "final_latents": latents, "w_embedding": w_embedding})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"source": "tools/pipeline_reference/lcm_tiny.py", "diffusers_version": diffusers.__version__,
                   "torch_version": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
