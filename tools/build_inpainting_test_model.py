#!/usr/bin/env python3
"""Build models/test/tiny-inpainting: models/test/tiny with a 9-channel inpainting UNet (test_model_nets.InpaintingUNet).

The text encoder, VAE, tokenizer and scheduler files are copied from models/test/tiny (build that first with
tools/build_test_models.py); the UNet is the tiny UNet's weights (rebuilt from the same seed) plus a seeded conv over
the mask and masked-image-latent channels, exported like tiny's UNet (int64 [B] timestep, dynamic batch and size)
with the 9 input channels declared, as the diffusers conversion script does.

    /usr/bin/python3 tools/build_inpainting_test_model.py
"""
import json
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_model_nets import SEQ_LEN, TEXT_DIM, InpaintingUNet, TextEncoder, UNet, VaeDecoder, VaeEncoder, calibrate  # noqa: E402

SEED = 20240  # tools/build_test_models.py
INPAINT_SEED = 909
ROOT = Path(__file__).resolve().parents[1] / "models" / "test"


def nets():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    text_encoder, unet, decoder = TextEncoder().eval(), UNet().eval(), VaeDecoder().eval()
    encoder = VaeEncoder(mean_only=False).eval()
    calibrate(text_encoder, unet, decoder, encoder)
    return text_encoder, InpaintingUNet(unet, INPAINT_SEED).eval(), encoder


def main() -> int:
    out = ROOT / "tiny-inpainting"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "tiny", out, ignore=shutil.ignore_patterns("unet"))
    index = json.loads((out / "model_index.json").read_text())
    index["_class_name"] = "OnnxStableDiffusionInpaintPipeline"
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    _, unet, _ = nets()
    (out / "unet").mkdir()
    sample = torch.randn(2, 9, 8, 12)
    timestep = torch.full((2,), 500, dtype=torch.int64)
    states = torch.randn(2, SEQ_LEN, TEXT_DIM)
    torch.onnx.export(unet, (sample, timestep, states), str(out / "unet" / "model.onnx"),
                      input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                      dynamic_axes={"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
                                    "encoder_hidden_states": {0: "batch", 1: "sequence"},
                                    "out_sample": {0: "batch", 2: "height", 3: "width"}},
                      opset_version=17, do_constant_folding=True)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"tiny-inpainting: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
