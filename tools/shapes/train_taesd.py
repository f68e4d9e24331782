#!/usr/bin/env python3
"""Train a TAESD decoder for the shapes model: diffusers v0.31.0's AutoencoderTiny decoder (DecoderTiny) at width 16,
distilled from the shipped VAE decoder on latents of the shipped VAE encoder, on the CPU (minutes on a quiet 2-core
machine; resumable, since a loaded one takes longer).

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/shapes/train_taesd.py [--steps 500] [--seconds S] [--work DIR]

What it does (everything seeded):
- rebuilds the shapes VAE encoder and decoder in torch (tools/shapes/models.py) from the initializers of
  models/shapes/vae_encoder|vae_decoder/model.onnx (stored float16, cast to float32 inside the graph: the same values);
- draws scenes from the shapes world (tools/shapes/world.py) at 64x64, encodes them, and keeps the posterior mean times
  the VAE's scaling_factor: the latents the UNet works in, which is what TAESD decodes (AutoencoderTiny's
  scaling_factor is 1.0, so diffusers passes the UNet's latents to it unchanged). A quarter of each batch gets Gaussian
  noise added (sigma up to 0.5), standing in for the half-denoised latents a live preview decodes; the teacher's
  pictures of a fixed set of 3200 are computed once and kept in --work, with the training state (every 50 steps);
- the teacher is the full decoder on latents / scaling_factor; the student's loss is L1 + MSE between
  AutoencoderTiny.decode (which maps its [0, 1] output to [-1, 1]) and the teacher's picture;
- exports the decoder as AutoencoderTiny.decode (input latent_sample [batch,4,h,w] -> sample [batch,3,8h,8w] in [-1, 1],
  dynamic batch and size, opset 17, float32) to models/shapes/taesd/vae_decoder/model.onnx with diffusers' config.json
  (save_config: _class_name AutoencoderTiny) beside it;
- writes tests/LocalDiffusion.Tests/TestData/Taesd/shapes_taesd_reference.json: seeded latents and diffusers'
  AutoencoderTiny.decode of them (the engine's parity test), and the PSNR of TAESD against the full decoder on
  held-out scenes as measured here (for the documentation; the engine's quality test measures its own).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from models import VaeConfig, VaeDecoder, VaeEncoder  # noqa: E402
from world import render, sample_scene  # noqa: E402
from sd15_size.build_random_sd15_export import import_diffusers  # noqa: E402
from build_test_models import save_checked  # noqa: E402
from taesd_decode import Decode  # noqa: E402

SHAPES = REPO / "models" / "shapes"
OUT = SHAPES / "taesd" / "vae_decoder"
REFERENCE = REPO / "tests" / "LocalDiffusion.Tests" / "TestData" / "Taesd" / "shapes_taesd_reference.json"
WIDTH = 16          # DecoderTiny's channels at every level (TAESD's own is 64): flat shapes need few
IMAGE = 64          # the shapes model's native size
SEED = 20261206


def load_onnx_weights(module: torch.nn.Module, path: Path) -> None:
    """Loads the model's initializers into module, as float32. Parameters keep their names (+ "_fp16"); the exporter
    spells each GroupNorm as InstanceNormalization then an anonymous Mul (weight) and Add (bias), numbered in forward
    order, which is the order of the norms' parameters in the state dict."""
    model = onnx.load(str(path))
    found = {t.name.removesuffix("_fp16"): torch.from_numpy(numpy_helper.to_array(t).astype(np.float32)) for t in model.graph.initializer}
    state = module.state_dict()
    anonymous = sorted((k for k in found if k.startswith("onnx::")), key=lambda k: int(k.rsplit("_", 1)[1]))
    missing = [k for k in state if k not in found]
    assert len(anonymous) == len(missing), (anonymous, missing)
    for name, key in zip(missing, anonymous):
        assert name.endswith(".weight") == key.startswith("onnx::Mul") and found[key].numel() == state[name].numel(), (name, key)
        found[name] = found.pop(key).reshape(state[name].shape)
    module.load_state_dict(found, strict=True)


def teacher() -> tuple[VaeEncoder, VaeDecoder, float]:
    config = json.loads((SHAPES / "vae_decoder" / "config.json").read_text())
    cfg = VaeConfig(channels=tuple(config["block_out_channels"]), latent_channels=config["latent_channels"])
    encoder, decoder = VaeEncoder(cfg).eval(), VaeDecoder(cfg).eval()
    load_onnx_weights(encoder, SHAPES / "vae_encoder" / "model.onnx")
    load_onnx_weights(decoder, SHAPES / "vae_decoder" / "model.onnx")
    for p in [*encoder.parameters(), *decoder.parameters()]:
        p.requires_grad_(False)
    return encoder, decoder, float(config["scaling_factor"])


def latents_of(rng: random.Random, encoder: VaeEncoder, scale: float, n: int) -> torch.Tensor:
    """UNet-space latents of n fresh scenes: the posterior mean times the scaling factor."""
    with torch.no_grad():
        pictures = render([sample_scene(rng) for _ in range(n)], IMAGE)
        return encoder(pictures)[:, :4] * scale


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of two [-1, 1] pictures as 8-bit images: (x/2 + 0.5) clamped to [0, 1], peak 1."""
    a, b = (a / 2 + 0.5).clamp(0, 1), (b / 2 + 0.5).clamp(0, 1)
    return 10 * math.log10(1 / F.mse_loss(a, b).item())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=3600, help="stop (resumably) when this much time has passed")
    parser.add_argument("--export-partial", action="store_true",
                        help="export the saved state as it is, short of --steps (the reference records the step reached)")
    parser.add_argument("--work", default="/tmp/localdiffusion-taesd", help="teacher pictures and resumable training state")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--scenes", type=int, default=3200, help="teacher pictures to distil from")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    diffusers = import_diffusers()
    encoder, decoder, scale = teacher()
    taesd = diffusers.AutoencoderTiny(encoder_block_out_channels=(WIDTH,) * 4, decoder_block_out_channels=(WIDTH,) * 4,
                                      latent_channels=4)
    student = taesd.decoder
    optimiser = torch.optim.Adam(student.parameters(), lr=2e-3)
    rng = random.Random(SEED)
    held_out = latents_of(random.Random(SEED + 1), encoder, scale, 64)
    with torch.no_grad():
        held_out_target = decoder(held_out / scale)

    # The teacher is slower than the student, so its pictures are computed once (and kept in --work): a fixed set of
    # scenes, a quarter of them noised (sigma up to 0.5) as a live preview's half-denoised latents are.
    start = time.time()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    teacher_file = work / f"teacher-{SEED}-{args.scenes}.pt"
    if teacher_file.exists():
        inputs, targets = torch.load(teacher_file)
    else:
        inputs, targets = [], []
        for _ in range(args.scenes // 100):
            z = latents_of(rng, encoder, scale, 100)
            z[:25] += torch.randn_like(z[:25]) * torch.rand(25, 1, 1, 1) * 0.5
            with torch.no_grad():
                targets.append(decoder(z / scale))
            inputs.append(z)
        inputs, targets = torch.cat(inputs), torch.cat(targets)
        torch.save((inputs, targets), teacher_file)
    print(f"{len(inputs)} teacher pictures in {time.time() - start:.0f} s", flush=True)

    # Training is resumable (on a loaded machine it may take several runs): the student, the optimiser, the step and the
    # random state are saved every 50 steps, and the learning rate follows the step count alone, so the result depends
    # on --steps, not on how the runs were split.
    state_file = work / f"student-{SEED}-{WIDTH}-{args.steps}.pt"
    step = 0
    if state_file.exists():
        saved = torch.load(state_file)
        student.load_state_dict(saved["student"])
        optimiser.load_state_dict(saved["optimiser"])
        step = saved["step"]
        torch.set_rng_state(saved["rng"])
        print(f"resumed at step {step}", flush=True)
    while step < args.steps and time.time() - start < args.seconds and not args.export_partial:
        for group in optimiser.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        pick = torch.randint(0, len(inputs), (args.batch,))
        target = targets[pick]
        y = taesd.decode(inputs[pick]).sample
        loss = (y - target).abs().mean() + F.mse_loss(y, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        if step % 50 == 0 or step == args.steps:
            torch.save({"student": student.state_dict(), "optimiser": optimiser.state_dict(), "step": step, "rng": torch.get_rng_state()}, state_file)
            with torch.no_grad():
                held = psnr(taesd.decode(held_out).sample, held_out_target)
            print(f"step {step}  {time.time() - start:.0f}s  loss {loss.item():.4f}  held-out PSNR {held:.2f} dB", flush=True)
    if step < args.steps and not args.export_partial:
        print(f"stopped at step {step} of {args.steps} (--seconds); run again to continue")
        return 1
    taesd.eval()
    with torch.no_grad():
        final_psnr = psnr(taesd.decode(held_out).sample, held_out_target)
    print(f"trained {step} steps; held-out PSNR against the full VAE decoder {final_psnr:.2f} dB")

    buffer = io.BytesIO()
    axes = {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "image_height", 3: "image_width"}}
    with torch.no_grad():
        torch.onnx.export(Decode(taesd), (torch.randn(1, 4, 8, 8),), buffer, input_names=["latent_sample"], output_names=["sample"],
                          dynamic_axes=axes, opset_version=17, do_constant_folding=True)
    save_checked(onnx.load_from_string(buffer.getvalue()), OUT / "model.onnx")
    taesd.save_config(str(OUT))
    print(f"wrote {OUT / 'model.onnx'} ({(OUT / 'model.onnx').stat().st_size} bytes)")

    # Parity reference: seeded latents at 8x8 and 8x12 (a non-square size), decoded by diffusers.
    generator = torch.Generator().manual_seed(7)
    cases = []
    for h, w in [(8, 8), (8, 12)]:
        z = torch.randn(1, 4, h, w, generator=generator)
        with torch.no_grad():
            out = taesd.decode(z).sample
        cases.append({"shape": [1, 4, h, w], "latents": z.flatten().tolist(), "sample": out.flatten().tolist()})
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps({
        "source": "tools/shapes/train_taesd.py: diffusers v0.31.0 AutoencoderTiny.decode (torch 1.13, float32) of torch.randn latents (generator seed 7)",
        "steps": step, "schedule_steps": args.steps, "batch": args.batch, "width": WIDTH, "held_out_psnr_db": round(final_psnr, 2), "cases": cases}) + "\n")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
