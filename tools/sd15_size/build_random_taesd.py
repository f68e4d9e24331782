#!/usr/bin/env python3
"""A TAESD decoder at the real size with random (seeded) weights, for timing against the real-size VAE decoder of
build_random_sd15_export.py: diffusers v0.31.0's AutoencoderTiny with its default (= madebyollin/taesd's) config
(64 channels at every level, decoder blocks (3, 3, 3, 1), 4 latent channels; 1.2 M decoder parameters, 4.9 MB fp32),
exported as AutoencoderTiny.decode (latent_sample -> sample, dynamic batch and size, opset 17) to OUT/taesd/vae_decoder/
with diffusers' config.json: the folder layout a model ships its TAESD in. The pictures are noise; the graph and its cost
are TAESD's.

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/sd15_size/build_random_taesd.py --out /tmp/sd15-random
"""
import argparse
import io
import sys
from pathlib import Path

import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from build_test_models import save_checked  # noqa: E402
from sd15_size.build_random_sd15_export import import_diffusers  # noqa: E402
from taesd_decode import Decode  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the model folder (outside the repository)")
    args = parser.parse_args()
    torch.manual_seed(1234)
    tiny = import_diffusers().AutoencoderTiny().eval()
    folder = args.out / "taesd" / "vae_decoder"
    buffer = io.BytesIO()
    axes = {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "image_height", 3: "image_width"}}
    with torch.no_grad():
        torch.onnx.export(Decode(tiny), (torch.randn(1, 4, 64, 64),), buffer, input_names=["latent_sample"], output_names=["sample"],
                          dynamic_axes=axes, opset_version=17, do_constant_folding=True)
    save_checked(onnx.load_from_string(buffer.getvalue()), folder / "model.onnx")
    tiny.save_config(str(folder))
    print(f"wrote {folder / 'model.onnx'} ({(folder / 'model.onnx').stat().st_size} bytes, "
          f"{sum(p.numel() for p in tiny.decoder.parameters())} decoder parameters)")


if __name__ == "__main__":
    main()
