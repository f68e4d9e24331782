#!/usr/bin/env python3
"""Reference tensors of diffusers v0.31.0's StableDiffusion3Pipeline / StableDiffusion3Img2ImgPipeline /
StableDiffusion3InpaintPipeline on models/test/tiny-sd3.

The reference rewrites StableDiffusion3Pipeline.__call__'s steps (and the img2img and inpaint pipelines') because importing those
pipeline modules needs transformers, which is not installable here. It rebuilds the torch networks exactly as
tools/build_sd3_test_model.py builds them (tiny-sd3's ONNX files are their export) and runs diffusers' own
SD3Transformer2DModel, AutoencoderKL and FlowMatch schedulers in the pipeline's order (read from v0.31.0's source):
  encode_prompt: CLIP ids padded to 77 (tokenizer/ pads with <|endoftext|>, tokenizer_2/ with "!" = 0; ids from
    tools/clip_bpe.py's CLIP encoder on tiny's vocabulary); each CLIP's text_embeds is its pooled output and
    hidden_states[-2] its states; T5 ids = SentencePiece ids cut to max_sequence_length − 1, then </s> (1), padded with 0
    (T5TokenizerFast's padding="max_length", truncation=True); clip = cat(states_l, states_g) zero-padded on the feature
    axis to T5's width; prompt_embeds = cat([clip, t5], sequence axis); pooled = cat(pooled_l, pooled_g); the negative
    prompt "" is encoded the same way (SD3 does not zero it);
  latents = randn((1, 16, H/8, W/8), generator) (no init-noise scaling); set_timesteps(n); per step: CFG batch
    [negative, positive] when guidance > 1, transformer(timestep = t expanded), uncond + g·(cond − uncond), scheduler.step;
  img2img: image (a formula in [-1, 1], as VaeImageProcessor would hand it over) → vae.encode → latent_dist.sample(generator)
    → (x − shift_factor)·scaling_factor; set_timesteps(n), get_timesteps (t_start = int(max(n − min(n·strength, n), 0)),
    set_begin_index(t_start·order)); noise = randn(generator) after the posterior sample; scale_noise(x, timesteps[:1], noise);
  inpainting (16-channel transformer): as img2img (strength < 1), then the masked image init·(mask < 0.5) is encoded (one
    more posterior draw, unused by a 16-channel transformer); mask (a binary rectangle) → F.interpolate to (H/8, W/8);
    after each step latents = (1 − mask)·scale_noise(image_latents, timesteps[i+1], noise) + mask·latents (the image
    latents themselves after the last step).
Stored per case: the token ids, the conditioning (prompt_embeds and pooled, positive and negative; once per distinct prompt),
the initial noise (img2img: the encoded latents and the noise; inpainting also the latent mask), sigmas, timesteps, the first transformer output (both CFG
halves) and the final latents. Floats are float32 shortest reprs.

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src:tools /usr/bin/python3 tools/pipeline_reference/sd3_tiny.py
writes tests/LocalDiffusion.Tests/TestData/Pipeline/diffusers_sd3_tiny.json (a few seconds).
"""
import json
import os
import sys

import numpy as np
import torch
from torch.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import flow_test_nets as nets  # noqa: E402
from build_sd3_test_model import OUT as MODEL, build  # noqa: E402
from clip_bpe import ClipBpe  # noqa: E402

diffusers = nets.import_diffusers()
OUT = os.path.join(HERE, "..", "..", "tests", "LocalDiffusion.Tests", "TestData", "Pipeline", "diffusers_sd3_tiny.json")
MAX_SEQ = 32  # max_sequence_length (the pipeline's default is 256; small keeps the file small)
SD3 = json.loads((MODEL / "scheduler" / "scheduler_config.json").read_text())
CASES = [
    dict(name="euler_64x96", prompt="a photo of a red cat on a beach", height=64, width=96, steps=4, guidance=5.0, seed=42,
         scheduler="FlowMatchEulerDiscreteScheduler", shift=3.0),
    dict(name="heun_48x80", prompt="a photo of a red cat on a beach", height=48, width=80, steps=3, guidance=4.0, seed=7,
         scheduler="FlowMatchHeunDiscreteScheduler", shift=3.0),
    dict(name="euler_shift1_nocfg_96x64", prompt="a watercolor of a golden dragon under the stars", height=96, width=64,
         steps=2, guidance=1.0, seed=1234, scheduler="FlowMatchEulerDiscreteScheduler", shift=1.0),
    dict(name="img2img_euler_64x96", prompt="a watercolor of a golden dragon under the stars", height=64, width=96,
         steps=5, guidance=3.0, seed=99, scheduler="FlowMatchEulerDiscreteScheduler", shift=3.0, strength=0.6),
    dict(name="inpaint_euler_64x96", prompt="a photo of a red cat on a beach", height=64, width=96,
         steps=5, guidance=3.0, seed=21, scheduler="FlowMatchEulerDiscreteScheduler", shift=3.0, strength=0.8, mask=True),
]


def floats(t):
    return [float(str(np.float32(v))) for v in t.detach().reshape(-1).numpy()]


def clip_ids(bpe, text, pad):
    ids = [bpe.vocab["<|startoftext|>"]] + bpe.encode(text)[:75] + [bpe.vocab["<|endoftext|>"]]
    return ids + [pad] * (77 - len(ids))


def image_formula(height, width):
    """The img2img input, already in VaeImageProcessor's [-1, 1] NCHW form: 0.8·sin(0.11x + 0.07y + 1.3c)."""
    c, y, x = torch.meshgrid(torch.arange(3.0), torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    return (0.8 * torch.sin(0.11 * x + 0.07 * y + 1.3 * c))[None].float()


def mask_formula(height, width):
    """The inpainting mask, as the mask processor (grayscale, binarised) hands it over: 1 (repaint) on the pixel rectangle
    21 <= x < 70, 13 <= y < 45, else 0; the tests draw the same rectangle as a white-on-black picture."""
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((x >= 21) & (x < 70) & (y >= 13) & (y < 45)).float()[None, None]


def latent_mask(mask, h, w):
    """prepare_mask_latents: F.interpolate(mask, size=(h, w)) (nearest)."""
    return F.interpolate(mask, size=(h, w))


@torch.no_grad()
def main():
    torch.set_num_threads(1)
    clip_l, clip_g, t5, transformer, vae = build()
    bpe = ClipBpe(MODEL / "tokenizer")
    eos = bpe.vocab["<|endoftext|>"]
    encoded = {}

    def encode(text):
        if text in encoded:
            return encoded[text]
        ids_l, ids_g = clip_ids(bpe, text, eos), clip_ids(bpe, text, 0)
        pooled_l, _, *states_l = clip_l(torch.tensor([ids_l]))
        pooled_g, _, *states_g = clip_g(torch.tensor([ids_g]))
        t5_ids = nets.t5_ids(MODEL / "tokenizer_3" / "spiece.model", [text], MAX_SEQ)
        t5_states = t5(t5_ids)
        clip = torch.cat([states_l[-2], states_g[-2]], dim=-1)
        clip = F.pad(clip, (0, t5_states.shape[-1] - clip.shape[-1]))
        result = dict(ids=ids_l, ids_2=ids_g, ids_3=t5_ids[0].tolist(), prompt_embeds=torch.cat([clip, t5_states], dim=-2),
                      pooled=torch.cat([pooled_l, pooled_g], dim=-1))
        encoded[text] = result
        return result

    cases, conditioning = [], {}
    for case in CASES:
        positive, negative = encode(case["prompt"]), encode("")
        for text, enc in ((case["prompt"], positive), ("", negative)):
            conditioning.setdefault(text, {"ids": enc["ids"], "ids_2": enc["ids_2"], "ids_3": enc["ids_3"],
                                           "prompt_embeds_shape": list(enc["prompt_embeds"].shape),
                                           "prompt_embeds": floats(enc["prompt_embeds"]), "pooled": floats(enc["pooled"])})
        cfg = case["guidance"] > 1
        embeds = torch.cat([negative["prompt_embeds"], positive["prompt_embeds"]]) if cfg else positive["prompt_embeds"]
        pooled = torch.cat([negative["pooled"], positive["pooled"]]) if cfg else positive["pooled"]
        scheduler = getattr(diffusers, case["scheduler"]).from_config(dict(SD3, shift=case["shift"]))
        generator = torch.Generator().manual_seed(case["seed"])
        shape = (1, 16, case["height"] // 8, case["width"] // 8)
        scheduler.set_timesteps(case["steps"])
        record = dict(case, max_sequence_length=MAX_SEQ, latent_shape=list(shape))
        if "strength" in case:
            image = image_formula(case["height"], case["width"])
            posterior = vae.encode(image).latent_dist
            latents = (posterior.sample(generator) - vae.config.shift_factor) * vae.config.scaling_factor
            n = case["steps"]
            t_start = int(max(n - min(n * case["strength"], n), 0))
            timesteps = scheduler.timesteps[t_start * scheduler.order:]
            scheduler.set_begin_index(t_start * scheduler.order)
            noise = torch.randn(shape, generator=generator)
            record.update(begin_index=t_start * scheduler.order, image_latents=floats(latents), noise=floats(noise))
            image_latents = latents
            latents = scheduler.scale_noise(latents, timesteps[:1], noise)
            record["noised_latents"] = floats(latents)
            if case.get("mask"):
                # StableDiffusion3InpaintPipeline, 16-channel transformer: the masked image is encoded after the noise (a
                # draw no later step reads); only the mask, the image latents and the noise enter the per-step blend.
                pixel_mask = mask_formula(case["height"], case["width"])
                _ = vae.encode(image * (pixel_mask < 0.5)).latent_dist.sample(generator)
                mask = latent_mask(pixel_mask, shape[2], shape[3])
                record["latent_mask"] = floats(mask)
        else:
            timesteps = scheduler.timesteps
            latents = torch.randn(shape, generator=generator)
            record["noise"] = floats(latents)
        record.update(sigmas=floats(scheduler.sigmas), timesteps=floats(timesteps))
        for i, t in enumerate(timesteps):
            model_input = torch.cat([latents] * 2) if cfg else latents
            prediction = transformer(hidden_states=model_input, timestep=t.expand(model_input.shape[0]),
                                     encoder_hidden_states=embeds, pooled_projections=pooled, return_dict=False)[0]
            if i == 0:
                record["first_transformer_output"] = floats(prediction)
            if cfg:
                uncond, cond = prediction.chunk(2)
                prediction = uncond + case["guidance"] * (cond - uncond)
            latents = scheduler.step(prediction, t, latents, return_dict=False)[0]
            if case.get("mask"):
                # the inpainting loop's blend: the image latents noised to the next timestep (clean after the last step)
                proper = image_latents
                if i < len(timesteps) - 1:
                    proper = scheduler.scale_noise(image_latents, torch.tensor([timesteps[i + 1]]), noise)
                latents = (1 - mask) * proper + mask * latents
        record["final_latents"] = floats(latents)
        cases.append(record)
    data = {"source": "tools/pipeline_reference/sd3_tiny.py", "model": "models/test/tiny-sd3",
            "diffusers_version": diffusers.__version__, "torch_version": torch.__version__,
            "vae": {"scaling_factor": vae.config.scaling_factor, "shift_factor": vae.config.shift_factor},
            "conditioning": conditioning, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases, {os.path.getsize(OUT)} bytes -> {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
