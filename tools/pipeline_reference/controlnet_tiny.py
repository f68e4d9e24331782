#!/usr/bin/env python3
"""Final latents of diffusers v0.31.0's StableDiffusionControlNetPipeline (text-to-image) on models/test/tiny-controlnet,
for the engine's ControlNet parity test.

Importing the pipeline module needs transformers, which is not installable here, and onnxruntime for Python is absent,
so the torch networks are rebuilt as tools/build_controlnet_test_model.py builds them (its `nets()`: same seeds; the ONNX
files are their export; the text encoder is tiny's, rebuilt as tools/pipeline_reference/img2img_tiny.py does) and
StableDiffusionControlNetPipeline.__call__'s steps are written out with diffusers' own UNet2DConditionModel,
ControlNetModel and schedulers:
    control image: VaeImageProcessor(do_normalize=False) → RGB / 255 in [0, 1] (the pictures are made at the output
                   size, so no resize), repeated [image, image] with CFG unless guess mode;
    latents:       randn([1,4,h,w], generator) × init_noise_sigma;
    no units:      the UNet without residuals (down_block_additional_residuals None), what the engine's zeros must give;
    keep[i][k]:    1 − (i/N < start_k or (i+1)/N > end_k), N = len(timesteps);
    each step:     latent_model_input = scale_model_input([latents, latents], t);
                   guess mode with CFG: the ControlNets see only the conditional half (latents scaled, the prompt's
                   embeddings), and their residuals get zeros prepended for the unconditional half;
                   each ControlNet k: ControlNetModel(input, t, embeddings, image_k, conditioning_scale = scale_k·keep[i][k],
                   guess_mode) — guess mode scales residual j by logspace(−1, 0, n+1)[j]·scale (mid: ·scale) — and
                   MultiControlNetModel sums the units' residuals;
                   UNet(latent_model_input, t, embeddings, down residuals, mid residual), uncond + g·(cond − uncond),
                   scheduler.step.
The timestep goes to both networks as the int64 [2] tensor the ONNX files take.

Control pictures the C# test recreates as RGB8 (y, x, c): A = (5x + 11y + 70c) mod 256, B = 255 where
((x // 16) + (y // 16)) is even, else 0 (all channels). Prompt ids: models/test/tiny's tokenizer (img2img_tiny.py).

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src:tools /usr/bin/python3 tools/pipeline_reference/controlnet_tiny.py
writes tests/LocalDiffusion.Tests/TestData/Pipeline/diffusers_controlnet_tiny.json (a few seconds).
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import build_controlnet_test_model as built  # noqa: E402  (installs the safetensors stand-in before diffusers loads)
import diffusers  # noqa: E402
from img2img_tiny import EMPTY_IDS, PROMPT, PROMPT_IDS, SD15  # noqa: E402
from img2img_tiny import nets as tiny_nets  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "tests", "LocalDiffusion.Tests", "TestData", "Pipeline", "diffusers_controlnet_tiny.json")
WIDTH, HEIGHT = 96, 64
CLASSES = {"pndm": "PNDMScheduler", "euler": "EulerDiscreteScheduler", "ddim": "DDIMScheduler", "dpmpp_2m": "DPMSolverMultistepScheduler"}


def picture(kind: str) -> torch.Tensor:
    y, x, c = np.meshgrid(np.arange(HEIGHT), np.arange(WIDTH), np.arange(3), indexing="ij")
    if kind == "A":
        rgb = (5 * x + 11 * y + 70 * c) % 256
    else:
        rgb = np.where(((x // 16) + (y // 16)) % 2 == 0, 255, 0)
    return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()


@torch.no_grad()
def run(text_encoder, unet, controlnets, case):
    units = case["units"]
    guess, guidance = case["guess_mode"], case["guidance"]
    scheduler = getattr(diffusers, CLASSES[case["scheduler"]]).from_config(SD15)
    embeddings = text_encoder(torch.tensor([EMPTY_IDS, PROMPT_IDS], dtype=torch.int32))[0]
    images = [picture(u["image"]) for u in units]
    if not guess:
        images = [torch.cat([im, im]) for im in images]
    scheduler.set_timesteps(case["steps"])
    timesteps = scheduler.timesteps
    generator = torch.Generator().manual_seed(case["seed"])
    latents = torch.randn((1, 4, HEIGHT // 8, WIDTH // 8), generator=generator, dtype=torch.float32) * scheduler.init_noise_sigma
    n = len(timesteps)
    for i, t in enumerate(timesteps):
        model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        t2 = torch.full((2,), int(t), dtype=torch.int64)
        if guess:
            control_input, control_embeddings, t_control = scheduler.scale_model_input(latents, t), embeddings[1:], t2[1:]
        else:
            control_input, control_embeddings, t_control = model_input, embeddings, t2
        down, mid = None, None
        for unit, image in zip(units, images):
            keep = 1.0 - float(i / n < unit["start"] or (i + 1) / n > unit["end"])
            d, m = controlnets[unit["net"]](control_input, t_control, control_embeddings, image,
                                            conditioning_scale=unit["scale"] * keep, guess_mode=guess, return_dict=False)
            if down is None:
                down, mid = list(d), m
            else:
                down = [a + b for a, b in zip(down, d)]
                mid = mid + m
        if guess and down is not None:
            down = [torch.cat([torch.zeros_like(d), d]) for d in down]
            mid = torch.cat([torch.zeros_like(mid), mid])
        noise_pred = unet(model_input, t2, embeddings, down_block_additional_residuals=down,
                          mid_block_additional_residual=mid, return_dict=False)[0]
        uncond, cond = noise_pred.chunk(2)
        latents = scheduler.step(uncond + guidance * (cond - uncond), t, latents).prev_sample
    return [float(str(np.float32(v))) for v in latents.reshape(-1).numpy()]


def main():
    torch.set_num_threads(1)
    text_encoder = tiny_nets()[0]
    unet, controlnets, _ = built.nets()
    cases = [
        {"name": "one/pndm", "scheduler": "pndm", "steps": 8, "guidance": 7.5, "seed": 42, "guess_mode": False,
         "units": [{"net": 0, "image": "A", "scale": 1.0, "start": 0.0, "end": 1.0}]},
        {"name": "two/euler", "scheduler": "euler", "steps": 8, "guidance": 7.5, "seed": 7, "guess_mode": False,
         "units": [{"net": 0, "image": "A", "scale": 0.8, "start": 0.0, "end": 1.0},
                   {"net": 1, "image": "B", "scale": 0.6, "start": 0.0, "end": 1.0}]},
        {"name": "window/ddim", "scheduler": "ddim", "steps": 10, "guidance": 5.0, "seed": 3, "guess_mode": False,
         "units": [{"net": 0, "image": "B", "scale": 1.2, "start": 0.2, "end": 0.7}]},
        {"name": "two_windows/dpmpp_2m", "scheduler": "dpmpp_2m", "steps": 8, "guidance": 7.5, "seed": 11, "guess_mode": False,
         "units": [{"net": 0, "image": "A", "scale": 1.0, "start": 0.0, "end": 0.5},
                   {"net": 1, "image": "B", "scale": 0.7, "start": 0.25, "end": 1.0}]},
        {"name": "none/euler", "scheduler": "euler", "steps": 6, "guidance": 7.5, "seed": 9, "guess_mode": False, "units": []},
        {"name": "guess/pndm", "scheduler": "pndm", "steps": 8, "guidance": 7.5, "seed": 5, "guess_mode": True,
         "units": [{"net": 0, "image": "A", "scale": 1.0, "start": 0.0, "end": 1.0}]},
    ]
    for case in cases:
        case.update({"model": "tiny-controlnet", "prompt": PROMPT, "width": WIDTH, "height": HEIGHT})
        case["final_latents"] = run(text_encoder, unet, controlnets, case)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"source": "tools/pipeline_reference/controlnet_tiny.py", "diffusers_version": diffusers.__version__,
                   "torch_version": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
