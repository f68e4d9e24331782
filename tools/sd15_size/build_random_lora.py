#!/usr/bin/env python3
"""A real-size kohya-format LoRA (random, seeded) for the SD-1.5-size UNet of build_random_sd15_export.py.

For measuring what applying a LoRA costs the engine (merge, session re-creation, memory) at the size people use: the
layers kohya's sd-scripts (networks/lora.py) trains on SD 1.x's UNet by default, i.e. every Linear and 1x1 Conv inside
each Transformer2DModel (proj_in, attn1/attn2 to_q/to_k/to_v/to_out.0, ff.net.0.proj, ff.net.2, proj_out: 16
transformers x 12 = 192 modules), with kohya's key names (lora_unet_<path with _>.lora_down.weight, .lora_up.weight,
.alpha), float16 tensors (alpha too, as sd-scripts saves with --save_precision fp16) and its ss_* metadata. SD 1.5's
proj_in/proj_out are 1x1 convolutions, so their LoRA weights are 4-D ([rank, in, 1, 1], [out, rank, 1, 1]) as kohya
writes them; --linear-only leaves them out (then every target is a MatMul).

The values are random (down ~ N(0, 1/in), up ~ N(0, 0.02²)): the pictures are noise anyway, but every weight changes.

    /usr/bin/python3 tools/sd15_size/build_random_lora.py --out /tmp/sd15-lora/kohya_r16.safetensors [--rank 16] [--alpha 8]
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from build_lora_test_files import sd15_unet_modules, write_safetensors  # noqa: E402

SEED = 4321
WIDTHS = {"down_blocks.0": 320, "down_blocks.1": 640, "down_blocks.2": 1280, "mid_block": 1280,
          "up_blocks.1": 1280, "up_blocks.2": 640, "up_blocks.3": 320}
CROSS_WIDTH = 768  # CLIP ViT-L/14's hidden size: attn2's to_k/to_v read the text encoder's output


def features(path: str) -> tuple[int, int]:
    """(in, out) features of a transformer module, from SD 1.5's block widths."""
    dim = next(w for prefix, w in WIDTHS.items() if path.startswith(prefix + "."))
    if path.endswith(("attn2.to_k", "attn2.to_v")):
        return CROSS_WIDTH, dim
    if path.endswith("ff.net.0.proj"):
        return dim, dim * 8  # GEGLU: both halves
    if path.endswith("ff.net.2"):
        return dim * 4, dim
    return dim, dim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the .safetensors file to write (outside the repository)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=8.0)
    parser.add_argument("--linear-only", action="store_true", help="leave out proj_in/proj_out (the 1x1 convolutions)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()

    modules = [(p, kind) for p, kind in sd15_unet_modules() if ".attentions." in p]
    if args.linear_only:
        modules = [(p, kind) for p, kind in modules if kind == "linear"]
    rng = np.random.default_rng(args.seed)
    tensors, params = {}, 0
    for path, kind in modules:
        fin, fout = features(path)
        down = rng.standard_normal((args.rank, fin), dtype=np.float32) / np.sqrt(fin)
        up = rng.standard_normal((fout, args.rank), dtype=np.float32) * 0.02
        if kind == "conv":
            down, up = down[:, :, None, None], up[:, :, None, None]
        name = "lora_unet_" + path.replace(".", "_")
        tensors[name + ".lora_down.weight"] = torch.from_numpy(down)
        tensors[name + ".lora_up.weight"] = torch.from_numpy(up)
        tensors[name + ".alpha"] = torch.tensor(args.alpha)
        params += fin * fout
    metadata = {
        "ss_network_module": "networks.lora", "ss_network_dim": str(args.rank), "ss_network_alpha": str(args.alpha),
        "ss_base_model_version": "sd_v1", "ss_output_name": args.out.stem, "ss_v2": "False",
        "ss_training_comment": "LocalDiffusion random LoRA for measurements", "ss_network_args": json.dumps({}),
    }
    write_safetensors(args.out, tensors, "F16", metadata)
    print(f"{args.out}: {len(modules)} modules, rank {args.rank}, alpha {args.alpha}, {args.out.stat().st_size / 2**20:.1f} MiB;"
          f" the UNet weights it changes hold {params / 1e6:.0f} M parameters")


if __name__ == "__main__":
    main()
