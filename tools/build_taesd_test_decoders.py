#!/usr/bin/env python3
"""Build models/test/taesd/: tiny random-weight TAESD decoders in the two forms people's ONNX files take, and the
reference pictures diffusers makes with them.

- raw/taesd_decoder.onnx: madebyollin's form (the file name A1111, ComfyUI and Unpaint use): the network alone,
  tanh(x/3)*3 then DecoderTiny's layers, returning [0, 1]; input `latents`, output `image` (not diffusers' names, so
  that the engine's acceptance of any single input and output is exercised); no config.json.
- taef1/vae_decoder/model.onnx + config.json: diffusers' AutoencoderTiny with 16 latent channels (TAESD3's and TAEF1's
  width) exported as AutoencoderTiny.decode (latent_sample -> sample in [-1, 1]), config.json from save_config; for the
  refusal of a TAESD with another model's latent channels.

Both are diffusers v0.31.0's DecoderTiny at width 8 (blocks (3, 3, 3, 1), as TAESD's), random weights from seed 0,
float32, opset 17, dynamic batch and size. tests/LocalDiffusion.Tests/TestData/Taesd/raw_taesd_reference.json holds
seeded latents and diffusers' AutoencoderTiny.decode of them ([-1, 1]); the engine maps the raw decoder's [0, 1] to
[-1, 1] and must agree.

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/build_taesd_test_decoders.py
"""
import io
import json
import sys
from pathlib import Path

import onnx
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_test_models import save_checked  # noqa: E402
from sd15_size.build_random_sd15_export import import_diffusers  # noqa: E402
from taesd_decode import Decode  # noqa: E402

AutoencoderTiny = import_diffusers().AutoencoderTiny
REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "models" / "test" / "taesd"
REFERENCE = REPO / "tests" / "LocalDiffusion.Tests" / "TestData" / "Taesd" / "raw_taesd_reference.json"
WIDTH = 8


class Raw(nn.Module):
    """madebyollin's decoder: the latent clamp and the layers, no [0, 1] -> [-1, 1] mapping."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, latents):
        return self.decoder.layers(torch.tanh(latents / 3) * 3)


def export(module, channels, path, names):
    buffer = io.BytesIO()
    axes = {names[0]: {0: "batch", 2: "height", 3: "width"}, names[1]: {0: "batch", 2: "image_height", 3: "image_width"}}
    with torch.no_grad():
        torch.onnx.export(module, (torch.randn(1, channels, 8, 8),), buffer, input_names=[names[0]], output_names=[names[1]],
                          dynamic_axes=axes, opset_version=17, do_constant_folding=True)
    save_checked(onnx.load_from_string(buffer.getvalue()), path)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def main() -> None:
    torch.manual_seed(0)
    sd = AutoencoderTiny(encoder_block_out_channels=(WIDTH,) * 4, decoder_block_out_channels=(WIDTH,) * 4, latent_channels=4).eval()
    export(Raw(sd.decoder), 4, OUT / "raw" / "taesd_decoder.onnx", ["latents", "image"])
    generator = torch.Generator().manual_seed(3)
    z = torch.randn(1, 4, 6, 10, generator=generator) * 2  # beyond the clamp's knee too
    with torch.no_grad():
        sample = sd.decode(z).sample
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps({
        "source": "tools/build_taesd_test_decoders.py: diffusers v0.31.0 AutoencoderTiny.decode (torch 1.13, float32) of 2 * torch.randn latents (generator seed 3)",
        "shape": [1, 4, 6, 10], "latents": z.flatten().tolist(), "sample": sample.flatten().tolist()}) + "\n")
    print(f"wrote {REFERENCE}")

    flux = AutoencoderTiny(encoder_block_out_channels=(WIDTH,) * 4, decoder_block_out_channels=(WIDTH,) * 4, latent_channels=16).eval()
    export(Decode(flux), 16, OUT / "taef1" / "vae_decoder" / "model.onnx", ["latent_sample", "sample"])
    flux.save_config(str(OUT / "taef1" / "vae_decoder"))


if __name__ == "__main__":
    main()
