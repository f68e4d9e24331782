#!/usr/bin/env python3
"""Build models/test/vae/attention/: a small VAE decoder with diffusers' own mid-block attention, for the engine's
attention fusion (src/LocalDiffusion/Onnx/Rewriting) on a VAE.

The test models' VAEs have no attention, but a real SD/SDXL VAE decoder has one in its mid-block: a single head over
every latent pixel (4096 tokens at 512x512, 16384 at 1024x1024), whose scores the fusion keeps out of memory. This is
diffusers v0.31.0's AutoencoderKL decoder (post_quant_conv + Decoder) at a tiny width (16 channels, four blocks as SD's
for its 8x upsampling, 8 norm groups), random weights from seed 0, exported by Debian's torch 1.13 as diffusers' ONNX exports are (baddbmm, Softmax,
bmm: the AttnProcessor spelling, since torch 1.13 has no scaled_dot_product_attention). Its pictures are noise.

    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src /usr/bin/python3 tools/build_vae_attention_test_decoder.py
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

AutoencoderKL = import_diffusers().AutoencoderKL  # with the safetensors stand-in Debian needs

OPSET = 17
OUT = Path(__file__).resolve().parents[1] / "models" / "test" / "vae" / "attention"
SCALING_FACTOR = 0.18215  # SD 1.x's, as the tiny test models use


class Decode(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample, return_dict=False)[0]


def main() -> None:
    torch.manual_seed(0)
    # Four blocks, so that the decoder upsamples 8x as SD's does; 16 channels keep the file small.
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        block_out_channels=(16,) * 4, layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=64,
                        scaling_factor=SCALING_FACTOR).eval()
    buffer = io.BytesIO()
    axes = {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "image_height", 3: "image_width"}}
    with torch.no_grad():
        torch.onnx.export(Decode(vae), (torch.randn(1, 4, 8, 8),), buffer, input_names=["latent_sample"], output_names=["sample"],
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    softmax = sum(n.op_type == "Softmax" for n in model.graph.node)
    assert softmax == 1, f"expected the mid-block's one attention, found {softmax} Softmax nodes"
    save_checked(model, OUT / "model.onnx")
    (OUT / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", "latent_channels": 4, "scaling_factor": SCALING_FACTOR}, indent=2) + "\n")
    print(f"wrote {OUT / 'model.onnx'} ({(OUT / 'model.onnx').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
