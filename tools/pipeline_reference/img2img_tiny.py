#!/usr/bin/env python3
"""Final latents of diffusers' img2img and (4-channel) inpainting on the tiny test model, for the engine's parity test.

onnxruntime for Python is not available to this project, so diffusers' OnnxStableDiffusion*Pipeline cannot run the
ONNX files. Instead the tiny model's torch networks are rebuilt exactly as tools/build_test_models.py builds them
(same seed, same calibration: the ONNX files are exports of these weights), and the steps of diffusers v0.31.0's
StableDiffusionImg2ImgPipeline / StableDiffusionInpaintPipeline (4-channel UNet branch) are run with diffusers' own
schedulers (DiagonalGaussianDistribution.sample and randn_tensor written out: diffusers.models needs safetensors), in the pipelines' order of generator draws:
    img2img:  encoder sample [1,4,h,w] → × 0.18215 → noise [1,4,h,w] → add_noise at timesteps[t_start·order]
    inpaint (4-channel UNet): the same image latents and noise (pure noise × init_noise_sigma when strength is 1), then the
              masked-image encoder sample (unused by a 4-channel UNet), then after every step
              latents = (1 − mask)·add_noise(image_latents, noise, next t) + mask·latents.
    inpaint (9-channel UNet, models/test/tiny-inpainting): the image is encoded only below strength 1, then the noise,
              then the masked image (pixels where the mask is white set to 0); the UNet input is
              [scaled latents ‖ mask ‖ masked-image latents], no blend.
Then per step: CFG pair [uncond, cond], scale_model_input, UNet (timestep given as the int64 the tiny ONNX UNet
takes), uncond + g·(cond − uncond), scheduler.step(..., generator) (eta where the step takes it).

Inputs the C# test recreates: the init image RGB8 pixel (y, x, c) = (7x + 13y + 50c) mod 256 at 96×64 (W×H) (two cases
draw it at 64×96 and let diffusers' VaeImageProcessor resize it, PIL Lanczos, as its pipelines do: issue #20);
the mask is white (repaint) where x < 48. Prompt ids: the engine's tokenizer output for the prompt on
models/test/tiny/tokenizer (tokenizer parity is tested separately), written below.

    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src:tools /usr/bin/python3 tools/pipeline_reference/img2img_tiny.py
writes tests/LocalDiffusion.Tests/TestData/Pipeline/diffusers_img2img_tiny.json.
"""
import inspect
import json
import os
import sys

import numpy as np
import torch

import diffusers

from test_model_nets import InpaintingUNet, TextEncoder, UNet, VaeDecoder, VaeEncoder, calibrate

SEED = 20240  # tools/build_test_models.py
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "LocalDiffusion.Tests", "TestData", "Pipeline", "diffusers_img2img_tiny.json")
SCALING = 0.18215
WIDTH, HEIGHT = 96, 64
PROMPT = "a red circle on a blue background"
# models/test/tiny's tokenizer on PROMPT (`localdiffusion tokenize --model models/test/tiny --prompt ... --json`) and on "".
PROMPT_IDS = [1012, 320, 645, 918, 81, 66, 598, 523, 320, 65, 75, 84, 324, 65, 64, 66, 74, 70, 538, 542, 323] + [1013] * 56
EMPTY_IDS = [1012] + [1013] * 76
SD15 = {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
        "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None}
CLASSES = {"dpmpp_2m_sde": "DPMSolverMultistepScheduler", "pndm": "PNDMScheduler", "ddim": "DDIMScheduler", "euler_a": "EulerAncestralDiscreteScheduler",
           "dpmpp_2m": "DPMSolverMultistepScheduler", "heun": "HeunDiscreteScheduler"}


def sample_posterior(moments, generator):
    """diffusers' DiagonalGaussianDistribution(moments).sample(generator), written out: diffusers.models needs
    safetensors, which is not installed here."""
    mean, logvar = torch.chunk(moments, 2, dim=1)
    std = torch.exp(0.5 * torch.clamp(logvar, -30.0, 20.0))
    return mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype)  # randn_tensor on CPU


def nets():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    text_encoder, unet, decoder = TextEncoder().eval(), UNet().eval(), VaeDecoder().eval()
    encoder = VaeEncoder(mean_only=False).eval()
    calibrate(text_encoder, unet, decoder, encoder)
    return text_encoder, unet, encoder, InpaintingUNet(unet, 909).eval()  # tools/build_inpainting_test_model.py


def init_image(source=None):
    """The formula's picture at WIDTH×HEIGHT; with source (w, h), drawn at that size and made WIDTH×HEIGHT by diffusers'
    VaeImageProcessor.preprocess (PIL Lanczos, then [-1, 1]), as the pipelines do with an init image of another size."""
    w, h = source or (WIDTH, HEIGHT)
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    rgb = ((7 * x + 13 * y + 50 * c) % 256).astype(np.float32)
    if source is None:
        return torch.from_numpy(rgb / 255.0 * 2.0 - 1.0).permute(2, 0, 1)[None].contiguous()
    from PIL import Image
    from diffusers.image_processor import VaeImageProcessor
    picture = Image.fromarray(rgb.astype(np.uint8), "RGB")
    return VaeImageProcessor().preprocess(picture, height=HEIGHT, width=WIDTH).float().contiguous()


@torch.no_grad()
def run(models, sid, steps, strength, guidance, seed, inpaint, eta=0.0, nine=False, images=1, source=None):
    text_encoder, unet, encoder, inpainting_unet = models
    if nine:
        unet = inpainting_unet
    overrides = {"algorithm_type": "sde-dpmsolver++"} if sid == "dpmpp_2m_sde" else {}  # the registry entry's option
    scheduler = getattr(diffusers, CLASSES[sid]).from_config({**SD15, **overrides})
    # num_images_per_prompt: [uncond × n, cond × n]; the image is encoded once and its latents repeated.
    embeddings = text_encoder(torch.tensor([EMPTY_IDS] * images + [PROMPT_IDS] * images, dtype=torch.int32))[0]
    scheduler.set_timesteps(steps)
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    timesteps = scheduler.timesteps[t_start * scheduler.order:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(t_start * scheduler.order)
    generator = torch.Generator().manual_seed(seed)
    image = init_image(source)
    image_latents = None
    if not (nine and strength == 1.0):  # a 9-channel UNet at strength 1 never encodes the image (no draw)
        image_latents = SCALING * sample_posterior(encoder(image), generator)
        image_latents = torch.cat([image_latents] * images)
    noise = torch.randn((images, 4, HEIGHT // 8, WIDTH // 8), generator=generator, dtype=torch.float32)
    if inpaint and strength == 1.0:
        latents = noise * scheduler.init_noise_sigma
    else:
        latents = scheduler.add_noise(image_latents, noise, timesteps[:1])
    mask = None
    if inpaint:
        pixel_mask = torch.zeros(1, 1, HEIGHT, WIDTH)
        pixel_mask[..., :WIDTH // 2] = 1.0
        masked_image = image * (pixel_mask < 0.5)
        masked_latents = SCALING * sample_posterior(encoder(masked_image), generator)  # drawn for either UNet kind
        mask = torch.nn.functional.interpolate(pixel_mask, size=(HEIGHT // 8, WIDTH // 8))
    # prepare_extra_step_kwargs: eta and generator only where step takes them.
    accepted = inspect.signature(scheduler.step).parameters
    step_kwargs = {key: value for key, value in (("generator", generator), ("eta", eta)) if key in accepted}
    for i, t in enumerate(timesteps):
        model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        if nine:
            model_input = torch.cat([model_input, torch.cat([mask] * 2), torch.cat([masked_latents] * 2)], dim=1)
        t_int = torch.full((2 * images,), int(t), dtype=torch.int64)
        noise_pred = unet(model_input, t_int, embeddings)
        uncond, cond = noise_pred.chunk(2)
        guided = uncond + guidance * (cond - uncond)
        latents = scheduler.step(guided, t, latents, **step_kwargs).prev_sample
        if inpaint and not nine:
            proper = image_latents
            if i < len(timesteps) - 1:
                proper = scheduler.add_noise(image_latents, noise, torch.tensor([timesteps[i + 1]]))
            latents = (1 - mask) * proper + mask * latents
    return [float(str(np.float32(v))) for v in latents.reshape(-1).numpy()]


def main():
    models = nets()
    cases = []
    for name, sid, steps, strength, guidance, seed, inpaint, eta, nine, *more in [
        ("img2img/pndm", "pndm", 10, 0.8, 7.5, 42, False, 0.0, False),
        ("img2img/ddim_eta", "ddim", 10, 0.6, 7.5, 7, False, 0.5, False),
        ("img2img/euler_a", "euler_a", 8, 0.75, 5.0, 3, False, 0.0, False),
        ("img2img/heun", "heun", 6, 0.5, 7.5, 11, False, 0.0, False),
        ("inpaint/dpmpp_2m", "dpmpp_2m", 10, 0.9, 7.5, 5, True, 0.0, False),
        ("inpaint/euler_a_full", "euler_a", 8, 1.0, 7.5, 9, True, 0.0, False),
        ("inpaint9/pndm_full", "pndm", 10, 1.0, 7.5, 21, True, 0.0, True),
        ("inpaint9/euler_a", "euler_a", 8, 0.75, 7.5, 22, True, 0.0, True),
        ("img2img/dpmpp_2m_sde_batch2", "dpmpp_2m_sde", 8, 0.7, 7.5, 31, False, 0.0, False, 2),
        # Issue #20: an init image of another size (64×96, W×H) resized to 96×64 as diffusers does (PIL Lanczos).
        ("img2img/resized_init_euler_a", "euler_a", 8, 0.75, 7.5, 41, False, 0.0, False, 1, (64, 96)),
        ("inpaint/resized_init_dpmpp_2m", "dpmpp_2m", 10, 0.9, 7.5, 42, True, 0.0, False, 1, (64, 96)),
    ]:
        batch = more[:1]
        source = more[1] if len(more) > 1 else None
        cases.append({"name": name, "scheduler": sid, "steps": steps, "strength": strength, "guidance": guidance,
                      "seed": seed, "images": batch[0] if batch else 1, "inpaint": inpaint, "eta": eta, "model": "tiny-inpainting" if nine else "tiny", "prompt": PROMPT, "width": WIDTH, "height": HEIGHT,
                      **({"init_width": source[0], "init_height": source[1]} if source else {}),
                      "final_latents": run(models, sid, steps, strength, guidance, seed, inpaint, eta, nine,
                                           batch[0] if batch else 1, source)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"source": "tools/pipeline_reference/img2img_tiny.py", "diffusers_version": diffusers.__version__,
                   "torch_version": torch.__version__, "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases → {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
