#!/usr/bin/env python3
"""Build models/test/tiny-sdxl-controlnet/: tiny-sdxl's tokenizers, text encoders (widths 32 + 48, text_embeds 16), VAE
and scheduler with a UNet that is diffusers v0.31.0's UNet2DConditionModel at a tiny SDXL-style config (addition_embed_type
"text_time": time ids embedded 8 wide each, plus text_embeds), exported with ControlNet's residual inputs, and an SDXL
ControlNet (ControlNetModel.from_unet) in controlnet/, whose inputs add text_embeds and time_ids as SDXL ControlNets' do.

  unet/model.onnx        sample [B,4,h,w], timestep int64 [B], encoder_hidden_states [B,S,80], text_embeds [B,16],
                         time_ids [B,6], down_block_{0..3}_additional_residual, mid_block_additional_residual → out_sample
  controlnet/model.onnx  sample, timestep, encoder_hidden_states, controlnet_cond [B,3,8h,8w], conditioning_scale [],
                         text_embeds, time_ids → the residuals
Seeds 32000 (UNet) and 32001 (ControlNet); the zero convolutions and conditioning embedding are initialised as
tools/build_controlnet_test_model.py does. Run after tools/build_sdxl_test_model.py (it copies tiny-sdxl's parts):

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/build_controlnet_sdxl_test_model.py
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_controlnet_test_model as base  # noqa: E402  (installs the safetensors stand-in before diffusers loads)
from build_test_models import save_checked  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "models" / "test"
OUT = ROOT / "tiny-sdxl-controlnet"
SOURCE = ROOT / "tiny-sdxl"
UNET_SEED, CONTROLNET_SEED = 32000, 32001
TEXT_WIDTH, POOLED, TIME_ID_DIM = 80, 16, 8


README_SECTION = """## SDXL ControlNet: tiny-sdxl-controlnet

Written by `tools/build_controlnet_sdxl_test_model.py` (this section too). tiny-sdxl's tokenizers, text encoders (widths 32
and 48, `text_embeds` 16), VAE and Euler scheduler, with a UNet that is diffusers v0.31.0's `UNet2DConditionModel` at a tiny
SDXL-style config (block channels 8/16, `addition_embed_type` "text_time", time ids embedded 8 wide, seed 32000) exported
with ControlNet's residual inputs, and an SDXL ControlNet (`ControlNetModel.from_unet`, seed 32001) in `controlnet/`.

| component | inputs | outputs |
|---|---|---|
| unet | `sample` float32 [batch,4,height,width], `timestep` int64 [batch], `encoder_hidden_states` float32 [batch,sequence,80], `text_embeds` float32 [batch,16], `time_ids` float32 [batch,6], `down_block_0_additional_residual` … `down_block_3_additional_residual`, `mid_block_additional_residual` | `out_sample` float32 [batch,4,height,width] |
| controlnet | `sample`, `timestep`, `encoder_hidden_states`, `controlnet_cond` float32 [batch,3,8·height,8·width], `conditioning_scale` float32 [], `text_embeds`, `time_ids` | the residuals |
"""


def unet_config() -> dict:
    return {**base.unet_config(TEXT_WIDTH), "addition_embed_type": "text_time", "addition_time_embed_dim": TIME_ID_DIM,
            "projection_class_embeddings_input_dim": POOLED + 6 * TIME_ID_DIM}


def nets():
    """(unet, controlnet), rebuilt identically on every call."""
    torch.manual_seed(UNET_SEED)
    unet = base.UNet2DConditionModel(**unet_config()).eval()
    return unet, base.make_controlnet(unet, CONTROLNET_SEED)


class ResidualUNet(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids, *residuals):
        return self.unet(sample, timestep, encoder_hidden_states, added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids},
                         down_block_additional_residuals=tuple(residuals[:-1]), mid_block_additional_residual=residuals[-1],
                         return_dict=False)[0]


class ControlNetOutputs(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale, text_embeds, time_ids):
        down, mid = self.net(sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale=conditioning_scale,
                             added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}, return_dict=False)
        return (*down, mid)


def added(batch: int = 2):
    g = torch.Generator().manual_seed(3)
    return torch.randn(batch, POOLED, generator=g), torch.tensor([[64.0, 96.0, 0.0, 0.0, 64.0, 96.0]] * batch)


def main() -> None:
    torch.set_num_threads(1)
    unet, controlnet = nets()
    if OUT.exists():
        shutil.rmtree(OUT)
    for part in ["tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2", "vae_decoder", "vae_encoder", "scheduler"]:
        shutil.copytree(SOURCE / part, OUT / part)
    shutil.copy(SOURCE / "model_index.json", OUT / "model_index.json")
    sample, timestep, hidden = base.example(width=TEXT_WIDTH)
    text_embeds, time_ids = added()
    cond = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    extra_axes = {"text_embeds": {0: "batch"}, "time_ids": {0: "batch"}}
    with torch.no_grad():
        down, mid = controlnet(sample, timestep, hidden, cond, added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}, return_dict=False)
    model = base.export_bytes(ResidualUNet(unet), (sample, timestep, hidden, text_embeds, time_ids, *down, mid),
                              ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids", *base.DOWN_NAMES, base.MID_NAME],
                              ["out_sample"], {**base.common_axes(), **extra_axes, **base.residual_axes(), "out_sample": {0: "batch", 2: "height", 3: "width"}})
    save_checked(model, OUT / "unet" / "model.onnx")
    config = {"_class_name": "UNet2DConditionModel", **{k: list(v) if isinstance(v, tuple) else v for k, v in unet_config().items()}}
    (OUT / "unet" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    model = base.export_bytes(ControlNetOutputs(controlnet), (sample, timestep, hidden, cond, torch.tensor(1.0), text_embeds, time_ids),
                              ["sample", "timestep", "encoder_hidden_states", "controlnet_cond", "conditioning_scale", "text_embeds", "time_ids"],
                              [*base.DOWN_NAMES, base.MID_NAME],
                              {**base.common_axes(), **extra_axes, **base.residual_axes(), "controlnet_cond": {0: "batch", 2: "image_height", 3: "image_width"}})
    save_checked(model, OUT / "controlnet" / "model.onnx")
    (OUT / "controlnet" / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel", "_diffusers_version": "0.31.0",
                                                                "cross_attention_dim": TEXT_WIDTH, "addition_embed_type": "text_time"}, indent=2) + "\n")
    base.write_readme_section(ROOT / "README.md", README_SECTION)
    for p in sorted(OUT.rglob("*.onnx")):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
