#!/usr/bin/env python3
"""Final latents of diffusers' text-to-image on models/test/tiny-sd2 (v-prediction, "!" padding), for the engine's test.

As tools/pipeline_reference/img2img_tiny.py explains, onnxruntime for Python is not available, so the tiny torch
networks are rebuilt exactly as tools/build_test_models.py builds them (tiny-sd2's ONNX files are tiny's) and the steps
of diffusers v0.31.0's StableDiffusionPipeline are run with diffusers' schedulers built from tiny-sd2's
scheduler_config.json (stable-diffusion-2-1's: DDIM, v_prediction): latents = randn([n,4,h,w], generator) ×
init_noise_sigma; per step CFG pair [uncond, cond], scale_model_input, UNet, uncond + g·(cond − uncond), step.
The prompt ids are padded with id 0 ("!", OpenCLIP's pad token) after EOS, as the engine's tokenizer does for SD 2.x.

    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src:tools /usr/bin/python3 tools/pipeline_reference/sd2_tiny.py
writes tests/LocalDiffusion.Tests/TestData/Pipeline/diffusers_sd2_tiny.json.
"""
import inspect
import json
import os
import sys

import numpy as np
import torch

import diffusers

from test_model_nets import TextEncoder, UNet, VaeDecoder, VaeEncoder, calibrate

SEED = 20240  # tools/build_test_models.py
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
OUT = os.path.join(ROOT, "tests", "LocalDiffusion.Tests", "TestData", "Pipeline", "diffusers_sd2_tiny.json")
WIDTH, HEIGHT = 96, 64
PROMPT = "a red circle on a blue background"
# models/test/tiny's tokenizer on PROMPT (as in img2img_tiny.py), then "!" (0) instead of <|endoftext|> as padding.
PROMPT_IDS = [1012, 320, 645, 918, 81, 66, 598, 523, 320, 65, 75, 84, 324, 65, 64, 66, 74, 70, 538, 542, 323, 1013] + [0] * 55
EMPTY_IDS = [1012, 1013] + [0] * 75
CLASSES = {None: "DDIMScheduler", "euler": "EulerDiscreteScheduler", "dpmpp_2m": "DPMSolverMultistepScheduler"}


def nets():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    text_encoder, unet, decoder = TextEncoder().eval(), UNet().eval(), VaeDecoder().eval()
    encoder = VaeEncoder(mean_only=False).eval()
    calibrate(text_encoder, unet, decoder, encoder)
    return text_encoder, unet


@torch.no_grad()
def run(models, sid, steps, guidance, seed):
    text_encoder, unet = models
    config = json.load(open(os.path.join(ROOT, "models", "test", "tiny-sd2", "scheduler", "scheduler_config.json")))
    scheduler = getattr(diffusers, CLASSES[sid]).from_config(config)
    embeddings = text_encoder(torch.tensor([EMPTY_IDS, PROMPT_IDS], dtype=torch.int32))[0]
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn((1, 4, HEIGHT // 8, WIDTH // 8), generator=generator, dtype=torch.float32) * scheduler.init_noise_sigma
    accepted = inspect.signature(scheduler.step).parameters
    step_kwargs = {key: value for key, value in (("generator", generator), ("eta", 0.0)) if key in accepted}
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        prediction = unet(model_input, torch.full((2,), int(t), dtype=torch.int64), embeddings)
        uncond, cond = prediction.chunk(2)
        latents = scheduler.step(uncond + guidance * (cond - uncond), t, latents, **step_kwargs).prev_sample
    return [float(str(np.float32(v))) for v in latents.reshape(-1).numpy()]


def main():
    models = nets()
    cases = []
    for name, sid, steps, guidance, seed in [
        ("sd2/ddim_v_default", None, 8, 7.5, 42),
        ("sd2/euler_v", "euler", 8, 7.5, 7),
        ("sd2/dpmpp_2m_v", "dpmpp_2m", 10, 5.0, 3),
    ]:
        cases.append({"name": name, "scheduler": sid, "steps": steps, "guidance": guidance, "seed": seed, "prompt": PROMPT,
                      "width": WIDTH, "height": HEIGHT, "final_latents": run(models, sid, steps, guidance, seed)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"source": "tools/pipeline_reference/sd2_tiny.py", "diffusers_version": diffusers.__version__,
                   "torch_version": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
