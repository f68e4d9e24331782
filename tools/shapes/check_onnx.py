#!/usr/bin/env python3
"""Compare the exported ONNX components with the PyTorch checkpoint they came from.

    check_onnx.py --ckpt DIR --model models/shapes --write-reference ref.npz     (here: torch only)
    check_onnx.py --model models/shapes --reference ref.npz                      (where onnxruntime is installed)

The reference holds fixed inputs (batch 2, and a non-square latent to exercise the dynamic axes) and the
checkpoint's outputs for them; the check runs the same inputs through ONNX Runtime and prints the largest errors.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

COMPONENTS = {
    "text_encoder": (["input_ids"], ["last_hidden_state", "pooler_output"]),
    "unet": (["sample", "timestep", "encoder_hidden_states"], ["out_sample"]),
    "vae_decoder": (["latent_sample"], ["sample"]),
    "vae_encoder": (["sample"], ["latent_parameters"]),
}


def write_reference(ckpt: Path, model_dir: Path, out: Path) -> None:
    import torch
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from models import VaeConfig, VaeEncoder, load_half
    from sample import Model
    m = Model(ckpt, model_dir / "tokenizer", "cpu")
    enc = VaeEncoder(VaeConfig(**{**m.cfg["vae"], "channels": tuple(m.cfg["vae"]["channels"])}))
    load_half(enc, torch.load(ckpt / "vae.pt")["encoder"])
    enc.eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([m.tokenizer.ids77(""), m.tokenizer.ids77("a red circle on the left on a blue background")], dtype=torch.int32)
    ref = {"text_encoder.input_ids": ids.numpy()}
    with torch.no_grad():
        hidden, pooled = m.text(ids)
        ref["text_encoder.last_hidden_state"], ref["text_encoder.pooler_output"] = hidden.numpy(), pooled.numpy()
        sample = torch.randn(2, 4, 16, 12, generator=g)
        t = torch.tensor([999.0, 421.5])
        ref.update({"unet.sample": sample.numpy(), "unet.timestep": t.numpy(), "unet.encoder_hidden_states": hidden.numpy(),
                    "unet.out_sample": m.unet(sample, t, hidden).numpy()})
        latent = torch.randn(2, 4, 16, 12, generator=g)
        ref.update({"vae_decoder.latent_sample": latent.numpy(), "vae_decoder.sample": m.decoder(latent).numpy()})
        image = torch.rand(2, 3, 128, 96, generator=g) * 2 - 1
        ref.update({"vae_encoder.sample": image.numpy(), "vae_encoder.latent_parameters": enc(image).numpy()})
    np.savez(out, **ref)
    print(f"reference -> {out}")


def check(model_dir: Path, reference: Path) -> int:
    import onnxruntime as ort
    ref = np.load(reference)
    worst = 0.0
    for name, (inputs, outputs) in COMPONENTS.items():
        session = ort.InferenceSession(str(model_dir / name / "model.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(outputs, {i: ref[f"{name}.{i}"] for i in inputs})
        for o, value in zip(outputs, got):
            want = ref[f"{name}.{o}"]
            err = float(np.abs(value - want).max())
            worst = max(worst, err / (float(np.abs(want).max()) + 1e-6))
            print(f"{name}.{o}: shape {list(value.shape)} max abs error {err:.2e} (max |ref| {np.abs(want).max():.2f})")
    print(f"worst relative error {worst:.2e}")
    return 0 if worst < 1e-2 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--ckpt")
    parser.add_argument("--write-reference")
    parser.add_argument("--reference")
    args = parser.parse_args()
    if args.write_reference:
        write_reference(Path(args.ckpt), Path(args.model), Path(args.write_reference))
        return 0
    return check(Path(args.model), Path(args.reference))


if __name__ == "__main__":
    sys.exit(main())
