#!/usr/bin/env python3
"""Reference tensors of diffusers v0.31.0's FluxPipeline / FluxImg2ImgPipeline / FluxInpaintPipeline on
models/test/tiny-flux-schnell and tiny-flux-dev.

The reference rewrites FluxPipeline.__call__'s steps (and FluxImg2ImgPipeline's and FluxInpaintPipeline's) because importing those pipeline modules
needs transformers, which is not installable here. It rebuilds the torch networks exactly as tools/build_flux_test_model.py
builds them and runs diffusers' own FluxTransformer2DModel, AutoencoderKL and FlowMatchEulerDiscreteScheduler in the
pipeline's order (read from v0.31.0's source); calculate_shift is diffusers' own function, read out of pipeline_flux.py
with ast (tools/scheduler_reference/generate_flow.py):
  encode_prompt: CLIP ids padded to 77 with <|endoftext|> (tools/clip_bpe.py on tiny's vocabulary) → pooler_output;
    T5 ids cut to max_sequence_length − 1, then </s> (1), padded with 0 → last_hidden_state; text_ids = zeros(S, 3);
  vae_scale_factor = 2^len(block_out_channels) = 16: latents (1, 16, 2·(H // 16), 2·(W // 16)) = randn(generator), packed
    2×2 into (1, h/2·w/2, 64) (token (i, j) holds channels c·4 + 2·dy + dx); img_ids (h/2·w/2, 3) = (0, i, j);
  sigmas = np.linspace(1, 1/n, n); μ = calculate_shift(h/2·w/2, base_image_seq_len, max_image_seq_len, base_shift,
    max_shift) from the scheduler config; set_timesteps(sigmas=…, mu=μ) (schnell's config ignores μ);
  dev: guidance = full([1], g); each step transformer(timestep = t/1000, guidance, pooled, prompt_embeds, txt_ids, img_ids),
    no CFG batch, scheduler.step; the final latents are stored packed and unpacked;
  img2img: image (a formula in [-1, 1]) → vae.encode → latent_dist.sample(generator) → (x − shift)·scale; μ from
    (H // 16)·(W // 16); get_timesteps as SD3's; noise = randn(generator) after the posterior sample;
    scale_noise(x, timesteps[:1], noise), then packed;
  inpainting: as img2img, then the masked image init·(mask < 0.5) is encoded (one more posterior draw, unused later); the
    mask (sd3_tiny.py's rectangle) → F.interpolate to (h, w), repeated over 16 channels, packed; after each step
    latents = (1 − mask)·scale_noise(image_latents, timesteps[i+1], noise) + mask·latents, all packed.
Stored per case: ids, prompt_embeds, pooled, img_ids' size, noise, μ, sigmas, timesteps, the first transformer output, the
final latents (packed and unpacked). Floats are float32 shortest reprs.

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src:tools /usr/bin/python3 tools/pipeline_reference/flux_tiny.py
writes tests/LocalDiffusion.Tests/TestData/Pipeline/diffusers_flux_tiny.json (a few seconds).
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "scheduler_reference"))
import flow_test_nets as nets  # noqa: E402

diffusers = nets.import_diffusers()
from build_flux_test_model import build  # noqa: E402
from clip_bpe import ClipBpe  # noqa: E402
from generate_flow import calculate_shift  # noqa: E402
from sd3_tiny import clip_ids, floats, image_formula, latent_mask, mask_formula  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "tests", "LocalDiffusion.Tests", "TestData", "Pipeline", "diffusers_flux_tiny.json")
MAX_SEQ = 32  # max_sequence_length (FluxPipeline's default 512; schnell is used with 256)
CASES = [
    dict(name="schnell_64x96", variant="schnell", prompt="a photo of a red cat on a beach", height=64, width=96, steps=4, seed=42),
    dict(name="dev_96x64", variant="dev", prompt="a watercolor of a golden dragon under the stars", height=96, width=64, steps=4,
         guidance=3.5, seed=7),
    dict(name="dev_80x48_g5", variant="dev", prompt="a photo of a red cat on a beach", height=80, width=48, steps=3,
         guidance=5.0, seed=1234),
    dict(name="dev_img2img_64x96", variant="dev", prompt="a photo of a red cat on a beach", height=64, width=96, steps=5,
         guidance=3.5, seed=99, strength=0.6),
    dict(name="schnell_img2img_64x64", variant="schnell", prompt="a watercolor of a golden dragon under the stars", height=64,
         width=64, steps=4, seed=5, strength=0.5),
    dict(name="dev_inpaint_64x96", variant="dev", prompt="a watercolor of a golden dragon under the stars", height=64, width=96,
         steps=4, guidance=3.5, seed=21, strength=0.7, mask=True),
]


def pack(latents):
    b, c, h, w = latents.shape
    return latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(latents, h, w):
    b, _, c = latents.shape
    return latents.view(b, h // 2, w // 2, c // 4, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c // 4, h, w)


def image_ids(h, w):
    ids = torch.zeros(h // 2, w // 2, 3)
    ids[..., 1] = ids[..., 1] + torch.arange(h // 2)[:, None]
    ids[..., 2] = ids[..., 2] + torch.arange(w // 2)[None, :]
    return ids.reshape((h // 2) * (w // 2), 3)


@torch.no_grad()
def main():
    torch.set_num_threads(1)
    models = {v: build(v) for v in ("schnell", "dev")}
    root = nets.ROOT
    bpe = ClipBpe(root / "tiny-flux-dev" / "tokenizer")
    eos = bpe.vocab["<|endoftext|>"]
    conditioning, cases = {}, []
    for case in CASES:
        clip_l, t5, transformer, vae = models[case["variant"]]
        folder = root / f"tiny-flux-{case['variant']}"
        config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        ids = clip_ids(bpe, case["prompt"], eos)
        _, pooled, *_ = clip_l(torch.tensor([ids]))
        t5_ids = nets.t5_ids(folder / "tokenizer_2" / "spiece.model", [case["prompt"]], MAX_SEQ)
        prompt_embeds = t5(t5_ids)
        conditioning.setdefault(case["prompt"], {"ids": ids, "ids_2": t5_ids[0].tolist(), "prompt_embeds": floats(prompt_embeds),
                                                 "pooled": floats(pooled)})
        text_ids = torch.zeros(prompt_embeds.shape[1], 3)
        h, w = 2 * (case["height"] // 16), 2 * (case["width"] // 16)
        shape = (1, 16, h, w)
        generator = torch.Generator().manual_seed(case["seed"])
        steps = case["steps"]
        sigmas = np.linspace(1.0, 1 / steps, steps)
        seq = (h // 2) * (w // 2) if "strength" not in case else (case["height"] // 16) * (case["width"] // 16)
        mu = calculate_shift(seq, config["base_image_seq_len"], config["max_image_seq_len"], config["base_shift"], config["max_shift"])
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(config)
        scheduler.set_timesteps(sigmas=sigmas, mu=mu)
        record = dict(case, max_sequence_length=MAX_SEQ, latent_shape=list(shape), image_seq_len=seq, mu=mu)
        if "strength" in case:
            image = image_formula(case["height"], case["width"])
            posterior = vae.encode(image).latent_dist
            image_latents = (posterior.sample(generator) - vae.config.shift_factor) * vae.config.scaling_factor
            t_start = int(max(steps - min(steps * case["strength"], steps), 0))
            timesteps = scheduler.timesteps[t_start * scheduler.order:]
            scheduler.set_begin_index(t_start * scheduler.order)
            noise = torch.randn(shape, generator=generator)
            record.update(begin_index=t_start * scheduler.order, image_latents=floats(image_latents), noise=floats(noise))
            latents = pack(scheduler.scale_noise(image_latents, timesteps[:1], noise))
            record["noised_latents_packed"] = floats(latents)
            if case.get("mask"):
                # FluxInpaintPipeline: the masked image is encoded after the noise (a draw no later step reads); the mask is
                # F.interpolate'd to (h, w), repeated over the 16 channels and packed like the latents.
                pixel_mask = mask_formula(case["height"], case["width"])
                _ = vae.encode(image * (pixel_mask < 0.5)).latent_dist.sample(generator)
                mask = latent_mask(pixel_mask, h, w)
                record["latent_mask"] = floats(mask)
                mask = pack(mask.repeat(1, 16, 1, 1))
                packed_image, packed_noise = pack(image_latents), pack(noise)
        else:
            timesteps = scheduler.timesteps
            noise = torch.randn(shape, generator=generator)
            record["noise"] = floats(noise)
            latents = pack(noise)
        record.update(sigmas=floats(scheduler.sigmas), timesteps=floats(timesteps))
        guidance = torch.full([1], case["guidance"], dtype=torch.float32) if transformer.config.guidance_embeds else None
        img_ids = image_ids(h, w)
        for i, t in enumerate(timesteps):
            prediction = transformer(hidden_states=latents, timestep=t.expand(1) / 1000, guidance=guidance,
                                     pooled_projections=pooled, encoder_hidden_states=prompt_embeds, txt_ids=text_ids,
                                     img_ids=img_ids, return_dict=False)[0]
            if i == 0:
                record["first_transformer_output"] = floats(prediction)
            latents = scheduler.step(prediction, t, latents, return_dict=False)[0]
            if case.get("mask"):
                proper = packed_image
                if i < len(timesteps) - 1:
                    proper = scheduler.scale_noise(packed_image, torch.tensor([timesteps[i + 1]]), packed_noise)
                latents = (1 - mask) * proper + mask * latents
        record["final_latents_packed"] = floats(latents)
        record["final_latents"] = floats(unpack(latents, h, w))
        cases.append(record)
    data = {"source": "tools/pipeline_reference/flux_tiny.py", "models": ["models/test/tiny-flux-schnell", "models/test/tiny-flux-dev"],
            "diffusers_version": diffusers.__version__, "torch_version": torch.__version__,
            "vae": {"scaling_factor": 0.3611, "shift_factor": 0.1159}, "conditioning": conditioning, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(cases)} cases, {os.path.getsize(OUT)} bytes -> {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
