#!/usr/bin/env python3
"""FLOPs of one UNet evaluation, counted op by op: diffusers v0.31.0's UNet2DConditionModel is run on torch's meta
device (shapes only, no arithmetic, no memory) while a TorchFunctionMode adds 2 x multiply-adds of every convolution,
Linear and batched matrix product (attention's scores and their product with V). Normalisations, activations, softmax
and the other elementwise ops are left out (under 1 % of the total at these sizes). A guided step is one evaluation
on the CFG pair: batch 2.

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/sdxl_size/count_unet_flops.py --model sdxl --size 1024
    ... --model sd15 --size 512      (the SD-1.5 count in benchmarks/README.md, as a check of the method: 1.61 TFLOP)
"""
import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))
from real_size_export import OnMeta  # noqa: E402
from sd15_size.build_random_sd15_export import UNET_CONFIG as SD15_UNET, import_diffusers  # noqa: E402


class CountFlops(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.flops = defaultdict(int)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is F.conv2d:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            cout, cin_per_group, kh, kw = weight.shape
            self.flops["convolutions"] += 2 * out.shape[0] * cout * out.shape[2] * out.shape[3] * cin_per_group * kh * kw
        elif func is F.linear:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            self.flops["linear layers"] += 2 * math.prod(out.shape[:-1]) * weight.shape[0] * weight.shape[1]
        elif func in (torch.bmm, torch.baddbmm, torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__):
            a = args[1] if func is torch.baddbmm else args[0]
            self.flops["attention products"] += 2 * math.prod(out.shape) * a.shape[-1]
        return out


def count_vae_decoder(size: int, batch: int) -> None:
    from sd15_size.build_random_sd15_export import VAE_CONFIG
    with OnMeta():
        vae = import_diffusers().AutoencoderKL(**{k: v for k, v in VAE_CONFIG.items() if not k.startswith("_")}).eval()
    counter = CountFlops()
    with torch.no_grad(), counter:
        vae.decode(torch.zeros(batch, 4, size // 8, size // 8, device="meta"), return_dict=False)
    total = sum(counter.flops.values())
    print(f"VAE decoder, {size}x{size}, batch {batch}: {total / 1e12:.2f} TFLOP")
    for name, value in counter.flops.items():
        print(f"  {name}: {value / 1e12:.3f} TFLOP ({value / total:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["sd15", "sd21", "sdxl", "sdxl-refiner", "vae-decoder"], default="sdxl",
                        help="a UNet, or SD's (and SDXL's) VAE decoder (one image: --batch 1)")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (latents: size/8)")
    parser.add_argument("--batch", type=int, default=2, help="2: a guided step (the CFG pair); 1: without guidance")
    args = parser.parse_args()
    if args.model == "vae-decoder":
        count_vae_decoder(args.size, args.batch)
        return
    from build_random_sdxl_export import REFINER_UNET_CONFIG, UNET_CONFIG
    from build_random_sdturbo_export import UNET_CONFIG as SD21_UNET
    config = {"sd15": SD15_UNET, "sd21": SD21_UNET, "sdxl": UNET_CONFIG, "sdxl-refiner": REFINER_UNET_CONFIG}[args.model]
    with OnMeta():
        unet = import_diffusers().UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")}).eval()
    b, side = args.batch, args.size // 8
    meta = {"device": "meta"}
    kwargs = {}
    if config.get("addition_embed_type") == "text_time":
        time_ids = (config["projection_class_embeddings_input_dim"] - 1280) // config["addition_time_embed_dim"]
        kwargs["added_cond_kwargs"] = {"text_embeds": torch.zeros(b, 1280, **meta), "time_ids": torch.zeros(b, time_ids, **meta)}
    counter = CountFlops()
    with torch.no_grad(), counter:
        unet(torch.zeros(b, 4, side, side, **meta), torch.zeros(b, dtype=torch.int64, **meta),
             torch.zeros(b, 77, config["cross_attention_dim"], **meta), return_dict=False, **kwargs)
    params = sum(p.numel() for p in unet.parameters())
    total = sum(counter.flops.values())
    print(f"{args.model} UNet ({params / 1e9:.3f} B parameters), {args.size}x{args.size} ({side}x{side} latents), batch {b}: "
          f"{total / 1e12:.2f} TFLOP")
    for name, value in counter.flops.items():
        print(f"  {name}: {value / 1e12:.3f} TFLOP ({value / total:.0%})")


if __name__ == "__main__":
    main()
