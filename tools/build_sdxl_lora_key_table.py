#!/usr/bin/env python3
"""Write tests/LocalDiffusion.Tests/TestData/Adapters/sdxl_kohya_sgm_to_peft.json: SDXL base's UNet modules that kohya's
LoRA/LoCon trains, named as kohya's SDXL LoRAs name them (lora_unet_ + the generative-models (SGM) UNet's module path,
'.' → '_': input_blocks_4_1_transformer_blocks_0_attn1_to_q, middle_block_0_in_layers_2, output_blocks_2_2_conv …), and the
names diffusers v0.31.0 gives them (_maybe_map_sgm_blocks_to_diffusers with layers_per_block 2, then
_convert_non_diffusers_lora_to_diffusers and convert_unet_state_dict_to_peft), with the diffusers module list.

SDXL base's layout (stabilityai/stable-diffusion-xl-base-1.0 unet/config.json): down blocks DownBlock2D and
CrossAttnDownBlock2D ×2 (transformer depths 2 and 10), layers_per_block 2; mid block depth 10; up blocks CrossAttnUpBlock2D
×2 (depths 10, 2) and UpBlock2D. SGM numbers the same modules as
input_blocks 1…8 (3 and 6 the downsamplers' op), middle_block 0…2 and output_blocks 0…8 (upsamplers at 2_2 and 5_2).
Written out because instantiating diffusers' UNet needs the safetensors package, which is not installed here.

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/build_sdxl_lora_key_table.py   (about a second)
"""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

OUT = Path(__file__).resolve().parents[1] / "tests" / "LocalDiffusion.Tests" / "TestData" / "Adapters" / "sdxl_kohya_sgm_to_peft.json"


def transformer(sgm, diffusers, depth):
    yield f"{sgm}.proj_in", f"{diffusers}.proj_in", "linear"  # SDXL uses linear projections
    for k in range(depth):
        for attn in ("attn1", "attn2"):
            for leaf in ("to_q", "to_k", "to_v", "to_out.0"):
                yield f"{sgm}.transformer_blocks.{k}.{attn}.{leaf}", f"{diffusers}.transformer_blocks.{k}.{attn}.{leaf}", "linear"
        yield f"{sgm}.transformer_blocks.{k}.ff.net.0.proj", f"{diffusers}.transformer_blocks.{k}.ff.net.0.proj", "linear"
        yield f"{sgm}.transformer_blocks.{k}.ff.net.2", f"{diffusers}.transformer_blocks.{k}.ff.net.2", "linear"
    yield f"{sgm}.proj_out", f"{diffusers}.proj_out", "linear"


def resnet(sgm, diffusers, shortcut):
    yield f"{sgm}.in_layers.2", f"{diffusers}.conv1", "conv"
    yield f"{sgm}.emb_layers.1", f"{diffusers}.time_emb_proj", "linear"
    yield f"{sgm}.out_layers.3", f"{diffusers}.conv2", "conv"
    if shortcut:
        yield f"{sgm}.skip_connection", f"{diffusers}.conv_shortcut", "conv"


def modules():
    out = []
    depths = [0, 2, 10]
    i = 1
    for b in range(3):
        for r in range(2):
            out += resnet(f"input_blocks.{i}.0", f"down_blocks.{b}.resnets.{r}", r == 0 and b > 0)
            if depths[b]:
                out += transformer(f"input_blocks.{i}.1", f"down_blocks.{b}.attentions.{r}", depths[b])
            i += 1
        if b < 2:
            out.append((f"input_blocks.{i}.0.op", f"down_blocks.{b}.downsamplers.0.conv", "conv"))
            i += 1
    out += resnet("middle_block.0", "mid_block.resnets.0", False)
    out += transformer("middle_block.1", "mid_block.attentions.0", 10)
    out += resnet("middle_block.2", "mid_block.resnets.1", False)
    up_depths = [10, 2, 0]
    i = 0
    for b in range(3):
        for r in range(3):
            out += resnet(f"output_blocks.{i}.0", f"up_blocks.{b}.resnets.{r}", True)
            if up_depths[b]:
                out += transformer(f"output_blocks.{i}.1", f"up_blocks.{b}.attentions.{r}", up_depths[b])
            if r == 2 and b < 2:
                out.append((f"output_blocks.{i}.2.conv", f"up_blocks.{b}.upsamplers.0.conv", "conv"))
            i += 1
    return out


def main() -> int:
    from diffusers.loaders.lora_conversion_utils import _convert_non_diffusers_lora_to_diffusers, _maybe_map_sgm_blocks_to_diffusers
    from diffusers.utils.state_dict_utils import convert_unet_state_dict_to_peft

    table = modules()
    state = {}
    for n, (sgm, _, kind) in enumerate(table):
        name = "lora_unet_" + sgm.replace(".", "_")
        shape = (1, 1, 1, 1) if kind == "conv" else (1, 1)
        # Each module's down matrix holds its index: the converted keys are matched back by value.
        state[name + ".lora_down.weight"] = torch.full(shape, float(n))
        state[name + ".lora_up.weight"] = torch.zeros(shape)
        state[name + ".alpha"] = torch.tensor(1.0)
    mapped = _maybe_map_sgm_blocks_to_diffusers(dict(state), SimpleNamespace(layers_per_block=2))
    converted, _ = _convert_non_diffusers_lora_to_diffusers(mapped)
    unet = {k[len("unet."):]: v for k, v in converted.items() if k.startswith("unet.")}
    peft = convert_unet_state_dict_to_peft(unet)
    pairs = [None] * len(table)
    for key, value in peft.items():
        if key.endswith(".lora_A.weight"):
            n = int(value.reshape(-1)[0].item())
            assert pairs[n] is None
            pairs[n] = {"kohya": "lora_unet_" + table[n][0].replace(".", "_"), "peft": "unet." + key}
    assert all(p is not None for p in pairs)
    OUT.write_text(json.dumps({
        "diffusers": "v0.31.0 _maybe_map_sgm_blocks_to_diffusers (layers_per_block 2) + _convert_non_diffusers_lora_to_diffusers + convert_unet_state_dict_to_peft",
        "modules": [{"component": "unet", "path": d, "kind": k} for _, d, k in table],
        "pairs": pairs,
    }, indent=1) + "\n")
    mismatched = [p for p, (_, d, _) in zip(pairs, table) if p["peft"] != f"unet.{d}.lora_A.weight"]
    print(f"wrote {OUT}: {len(pairs)} modules; diffusers names differ from the layout's for {len(mismatched)}: {mismatched[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
