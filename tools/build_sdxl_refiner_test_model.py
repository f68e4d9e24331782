#!/usr/bin/env python3
"""Build models/test/tiny-sdxl-refiner: a tiny, random-weight SDXL refiner export in optimum's ONNX layout.

What an engine sees of stabilityai/stable-diffusion-xl-refiner-1.0, on toy sizes (its own seed):
  * text_encoder_2/ alone (width 48, CLIPTextModelWithProjection-like: text_embeds [B,16], last_hidden_state,
    hidden_states.0..2) and tokenizer_2/ (pad "!" = id 0); no text_encoder/ or tokenizer/;
  * unet/ takes encoder_hidden_states [B,77,48] (encoder 2's hidden_states[-2] only), text_embeds [B,16] and
    time_ids [B,5] = (original height, original width, crop top, crop left, aesthetic score);
  * vae_decoder/, vae_encoder/ (scaling_factor 0.13025) and scheduler/ as tiny-sdxl (the refiner's scheduler config
    equals the base's);
  * model_index.json: StableDiffusionXLImg2ImgPipeline's ORT class, "text_encoder": [null, null],
    "requires_aesthetics_score": true, "force_zeros_for_empty_prompt": false (as the refiner's).

    /usr/bin/python3 tools/build_sdxl_refiner_test_model.py   (after tools/build_sdxl_test_model.py)
"""
import json
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_sdxl_test_model import DIM2, PROJ, ROOT, SdxlTextEncoder, SdxlUNet, export, export_unet_and_vae  # noqa: E402
from test_model_nets import SEQ_LEN, TextEncoder, UNet, VaeDecoder, VaeEncoder, calibrate  # noqa: E402

SEED = 20260
TIME_IDS = 5


def nets():
    """(text_encoder_2, unet, vae_decoder, vae_encoder), rebuilt identically on every call."""
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    te2 = TextEncoder(DIM2).eval()
    unet, decoder = UNet(text_dim=DIM2).eval(), VaeDecoder().eval()
    encoder = VaeEncoder(mean_only=False).eval()
    calibrate(te2, unet, decoder, encoder)
    proj_seed = torch.Generator().manual_seed(SEED + 1)
    text_encoder_2 = SdxlTextEncoder(te2, PROJ).eval()
    with torch.no_grad():
        text_encoder_2.projection.weight.copy_(torch.randn(PROJ, DIM2, generator=proj_seed) * DIM2 ** -0.5)
    return text_encoder_2, SdxlUNet(unet, SEED + 2, TIME_IDS).eval(), decoder, encoder


def main() -> int:
    out = ROOT / "tiny-sdxl-refiner"
    base = ROOT / "tiny-sdxl"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    te2, unet, decoder, encoder = nets()
    shutil.copytree(base / "tokenizer_2", out / "tokenizer_2")
    shutil.copytree(base / "scheduler", out / "scheduler")
    ids = torch.randint(0, 1000, (1, SEQ_LEN), dtype=torch.int32)
    hidden = [f"hidden_states.{i}" for i in range(3)]
    export(te2, (ids,), out / "text_encoder_2" / "model.onnx", ["input_ids"], ["text_embeds", "last_hidden_state", *hidden],
           {"input_ids": {0: "batch"}, **{n: {0: "batch"} for n in hidden}, "last_hidden_state": {0: "batch"}, "text_embeds": {0: "batch"}})
    export_unet_and_vae(unet, decoder, encoder, out, DIM2, [64.0, 96.0, 0.0, 0.0, 6.0])
    for part in ("vae_decoder", "vae_encoder"):
        shutil.copy(base / part / "config.json", out / part / "config.json")
    onnx = ["diffusers", "OnnxRuntimeModel"]
    index = {"_class_name": "ORTStableDiffusionXLImg2ImgPipeline", "_diffusers_version": "0.31.0",
             "force_zeros_for_empty_prompt": False, "requires_aesthetics_score": True,
             "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": [None, None], "text_encoder_2": onnx,
             "tokenizer": [None, None], "tokenizer_2": ["transformers", "CLIPTokenizer"],
             "unet": onnx, "vae_decoder": onnx, "vae_encoder": onnx}
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"tiny-sdxl-refiner: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
