#!/usr/bin/env python3
"""Build models/test/tiny-controlnet/: an SD 1.x-style folder whose UNet is diffusers v0.31.0's UNet2DConditionModel at a
tiny config, exported WITH ControlNet's residual inputs, and two ControlNets (diffusers' ControlNetModel.from_unet), plus
a ControlNet of another family for the refusal test.

tiny's UNet (tools/test_model_nets.py) is not diffusers' network, so it has no skip connections a ControlNet could feed.
This folder keeps tiny's tokenizer, text encoder (width 32), VAE and scheduler (copied) and replaces the UNet:

  unet/model.onnx        UNet2DConditionModel(block_out_channels (16, 32), CrossAttnDownBlock2D + DownBlock2D,
                         layers_per_block 1, cross_attention_dim 32, 4 heads of 4, 8 norm groups), seed 31000.
                         inputs  sample [B,4,h,w], timestep int64 [B], encoder_hidden_states [B,S,32],
                                 down_block_{0..3}_additional_residual, mid_block_additional_residual
                         output  out_sample [B,4,h,w]
  controlnet/model.onnx  ControlNetModel.from_unet(unet, conditioning_embedding_out_channels (8, 8, 16, 16)), seed 31001
  controlnet_1/model.onnx the same architecture, seed 31002 (the second unit of a multi-ControlNet test)
                         inputs  sample, timestep, encoder_hidden_states (as the UNet), controlnet_cond [B,3,8h,8w]
                                 (RGB in [0,1]), conditioning_scale float32 [] (diffusers multiplies every residual by it)
                         outputs down_block_{0..3}_additional_residual, mid_block_additional_residual
  ../refused/controlnet-text48/model.onnx  a ControlNet whose cross-attention width is 48 (another family), seed 31003
  ../refused/controlnet-nan/model.onnx     controlnet/ with a NaN in its mid-block bias (the NaN report's test)

The residual names are OnnxStack's (its ControlNet converter's outputs and ControlNet UNet's inputs); the engine also
accepts other spellings that carry the block index (see src/LocalDiffusion/ControlNet/ControlResiduals.cs).

diffusers initialises ControlNet's zero convolutions (controlnet_down_blocks, controlnet_mid_block, the conditioning
embedding's conv_out) with zeros, which would make the control image irrelevant; here they get seeded random weights
(normal, std 0.1 for the 1x1 convs) and the conditioning embedding's convolutions He-initialised weights (conv_out
1/fan_in), so that the control image and the scale change the picture (with PyTorch's default initialisation the image
reached the residuals at ~1e-4 of their size). The other weights are PyTorch's default initialisation under each seed. UNet 660 KB, ControlNets 360 KB each (fp32; the graph's nodes are most of it).

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/build_controlnet_test_model.py

Run after tools/build_test_models.py (it copies models/test/tiny's tokenizer, text encoder, VAE and scheduler).
The reference tools/pipeline_reference/controlnet_tiny.py imports `nets()` from here to rebuild the same torch weights.
"""
import io
import json
import shutil
import sys
from pathlib import Path

import onnx
import onnx.numpy_helper
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_test_models import save_checked  # noqa: E402
from sd15_size.build_random_sd15_export import import_diffusers  # noqa: E402

_diffusers = import_diffusers()  # with the safetensors stand-in Debian needs
UNet2DConditionModel = _diffusers.UNet2DConditionModel
ControlNetModel = _diffusers.ControlNetModel

OPSET = 17
ROOT = Path(__file__).resolve().parents[1] / "models" / "test"
OUT = ROOT / "tiny-controlnet"
TINY = ROOT / "tiny"
UNET_SEED, CONTROLNET_SEEDS, WIDE_SEED = 31000, (31001, 31002), 31003
TEXT_WIDTH = 32  # tiny's text encoder
DOWN_RESIDUALS = 4  # conv_in, the first block's resnet and downsampler, the second block's resnet


def unet_config(cross_attention_dim: int = TEXT_WIDTH) -> dict:
    return dict(sample_size=8, in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(8, 16), layers_per_block=1,
                cross_attention_dim=cross_attention_dim, attention_head_dim=4, norm_num_groups=4)


def make_unet(seed: int, cross_attention_dim: int = TEXT_WIDTH):
    torch.manual_seed(seed)
    return UNet2DConditionModel(**unet_config(cross_attention_dim)).eval()


def make_controlnet(unet, seed: int):
    torch.manual_seed(seed)
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 8, 8, 16)).eval()
    # The zero convolutions get seeded random weights, so that the control matters (see the docstring).
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block]:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.1)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 0.1)
        # PyTorch's default conv initialisation shrinks a signal about 3× per layer, so after the embedding's eight
        # convolutions the control image would reach the residuals at ~1e-4 of their size; He-initialised convolutions
        # (and conv_out at 1/fan_in) carry it at full strength.
        embedding = net.controlnet_cond_embedding
        for conv in [embedding.conv_in, *embedding.blocks, embedding.conv_out]:
            fan_in = conv.weight[0].numel()
            gain = 1.0 if conv is embedding.conv_out else 2.0
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (gain / fan_in) ** 0.5)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 0.05)
    return net


def nets():
    """The torch networks of the folder: (unet, [controlnet, controlnet_1]) and the other-family ControlNet."""
    unet = make_unet(UNET_SEED)
    controlnets = [make_controlnet(unet, s) for s in CONTROLNET_SEEDS]
    wide = make_controlnet(make_unet(UNET_SEED, 48), WIDE_SEED)
    return unet, controlnets, wide

README_SECTION = """## ControlNet: tiny-controlnet

Written by `tools/build_controlnet_test_model.py` (this section too). `tiny`'s tokenizer, text encoder (width 32), VAE and
scheduler, with a UNet that is diffusers v0.31.0's `UNet2DConditionModel` at a tiny config (block channels 8/16,
`CrossAttnDownBlock2D` + `DownBlock2D`, one resnet per block, 4 norm groups, seed 31000) exported **with ControlNet's
residual inputs**, and two ControlNets (`ControlNetModel.from_unet`, seeds 31001 and 31002) in diffusers' multi-ControlNet
save layout (`controlnet/`, `controlnet_1/`, each `model.onnx` + `config.json`). Residual names are OnnxStack's.

| component | inputs | outputs |
|---|---|---|
| unet | `sample` float32 [batch,4,height,width], `timestep` int64 [batch], `encoder_hidden_states` float32 [batch,sequence,32], `down_block_0_additional_residual` … `down_block_3_additional_residual` float32 [batch,8/8/8/16,h,w], `mid_block_additional_residual` float32 [batch,16,h/2,w/2] | `out_sample` float32 [batch,4,height,width] |
| controlnet, controlnet_1 | `sample`, `timestep`, `encoder_hidden_states` as the UNet's, `controlnet_cond` float32 [batch,3,8·height,8·width] (RGB in [0, 1]), `conditioning_scale` float32 [] | `down_block_0_additional_residual` … `down_block_3_additional_residual`, `mid_block_additional_residual` |

Down residuals 0–2 are at the latent size, 3 and the mid one at half (one downsampler). diffusers' zero-initialised
convolutions get seeded random weights and the conditioning embedding He-initialised ones, so the control image and the
scale change the picture. `refused/controlnet-text48/` is a ControlNet of the same shape for a UNet with 48-wide text
conditioning (another family), which the engine refuses naming its file; `refused/controlnet-nan/` is `controlnet/` with
one NaN in its mid-block bias, whose NaN residual the engine reports naming the ControlNet.
"""


DOWN_NAMES = [f"down_block_{i}_additional_residual" for i in range(DOWN_RESIDUALS)]
MID_NAME = "mid_block_additional_residual"


class ResidualUNet(nn.Module):
    """The UNet with the residuals as separate inputs (ONNX has no tuple inputs)."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, *residuals):
        return self.unet(sample, timestep, encoder_hidden_states, down_block_additional_residuals=tuple(residuals[:-1]),
                         mid_block_additional_residual=residuals[-1], return_dict=False)[0]


class ControlNetOutputs(nn.Module):
    """ControlNetModel.forward with its residuals as separate outputs."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale):
        down, mid = self.net(sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale=conditioning_scale,
                             return_dict=False)
        return (*down, mid)


def example(batch: int = 2, h: int = 8, w: int = 8, width: int = TEXT_WIDTH):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(batch, 4, h, w, generator=g), torch.tensor([500] * batch, dtype=torch.int64),
            torch.randn(batch, 77, width, generator=g))


def export_bytes(module, args, inputs, outputs, axes) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, args, buffer, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())


def residual_axes() -> dict:
    return {name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in [*DOWN_NAMES, MID_NAME]}


def common_axes() -> dict:
    return {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
            "encoder_hidden_states": {0: "batch", 1: "sequence"}}


def export_unet(unet, controlnet, path: Path) -> None:
    sample, timestep, hidden = example()
    with torch.no_grad():  # residuals of the right shapes to trace with
        down, mid = controlnet(sample, timestep, hidden, torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)),
                               return_dict=False)
    axes = {**common_axes(), **residual_axes(), "out_sample": {0: "batch", 2: "height", 3: "width"}}
    model = export_bytes(ResidualUNet(unet), (sample, timestep, hidden, *down, mid),
                         ["sample", "timestep", "encoder_hidden_states", *DOWN_NAMES, MID_NAME], ["out_sample"], axes)
    save_checked(model, path)


def export_controlnet(net, path: Path, width: int = TEXT_WIDTH) -> None:
    sample, timestep, hidden = example(width=width)
    cond = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    axes = {**common_axes(), **residual_axes(), "controlnet_cond": {0: "batch", 2: "image_height", 3: "image_width"}}
    model = export_bytes(ControlNetOutputs(net), (sample, timestep, hidden, cond, torch.tensor(1.0)),
                         ["sample", "timestep", "encoder_hidden_states", "controlnet_cond", "conditioning_scale"],
                         [*DOWN_NAMES, MID_NAME], axes)
    save_checked(model, path)
    config = {"_class_name": "ControlNetModel", "_diffusers_version": "0.31.0", "cross_attention_dim": width,
              "block_out_channels": [8, 16], "conditioning_embedding_out_channels": [4, 8, 8, 16], "in_channels": 4,
              "conditioning_channels": 3}
    (path.parent / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def write_nan_controlnet(source: Path, path: Path) -> None:
    """controlnet/ with a NaN mid-block bias: its mid residual is NaN, so the engine's NaN report can be tested."""
    model = onnx.load(str(source))
    bias = next(i for i in model.graph.initializer if i.name == "net.controlnet_mid_block.bias")
    values = onnx.numpy_helper.to_array(bias).copy()
    values[0] = float("nan")
    bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
    save_checked(model, path)


def write_readme_section(readme: Path, section: str = README_SECTION) -> None:
    """Replaces (or appends) a model's section of models/test/README.md."""
    text = readme.read_text()
    title = section.lstrip("\n").splitlines()[0]
    if title in text:
        start = text.index(title)
        end = text.find("\n## ", start + len(title))
        text = text[:start] + section.lstrip("\n") + ("" if end < 0 else text[end + 1:])
    else:
        text = text.rstrip("\n") + "\n\n" + section.lstrip("\n")
    readme.write_text(text)


def main() -> None:
    torch.set_num_threads(1)
    unet, controlnets, wide = nets()
    if OUT.exists():
        shutil.rmtree(OUT)
    for part in ["tokenizer", "text_encoder", "vae_decoder", "vae_encoder", "scheduler"]:
        shutil.copytree(TINY / part, OUT / part)
    export_unet(unet, controlnets[0], OUT / "unet" / "model.onnx")
    (OUT / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel", **unet_config(),
                                                          "down_block_types": list(unet_config()["down_block_types"]),
                                                          "up_block_types": list(unet_config()["up_block_types"]),
                                                          "block_out_channels": [8, 16]}, indent=2) + "\n")
    for i, net in enumerate(controlnets):
        export_controlnet(net, OUT / ("controlnet" if i == 0 else f"controlnet_{i}") / "model.onnx")
    export_controlnet(wide, ROOT / "refused" / "controlnet-text48" / "model.onnx", width=48)
    write_nan_controlnet(OUT / "controlnet" / "model.onnx", ROOT / "refused" / "controlnet-nan" / "model.onnx")
    shutil.copy(TINY / "model_index.json", OUT / "model_index.json")  # the ControlNets are found by folder name
    write_readme_section(ROOT / "README.md")
    for p in sorted(OUT.rglob("*.onnx")) + [ROOT / "refused" / "controlnet-text48" / "model.onnx", ROOT / "refused" / "controlnet-nan" / "model.onnx"]:
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
