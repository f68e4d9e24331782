#!/usr/bin/env python3
"""A Stable-Diffusion-XL-architecture ONNX folder (base, and optionally the refiner) with random, seeded weights at the
real sizes, for measuring the engine at SDXL size where the real weights cannot be had. The pictures are noise; the
tensors, graphs and file layout are SDXL's (optimum's ONNX layout, as build_sdxl_test_model.py makes on toy sizes):

  unet/            diffusers v0.31.0 UNet2DConditionModel with stable-diffusion-xl-base-1.0's config (2.57 B parameters,
                   10.3 GB fp32): inputs sample, timestep (int64), encoder_hidden_states [B,77,2048], text_embeds [B,1280],
                   time_ids [B,6]; every initializer in its own file beside model.onnx, as torch writes a model over 2 GB
  text_encoder/    CLIP ViT-L/14's text transformer (123 M parameters, quick-GELU), outputs last_hidden_state,
                   pooler_output and hidden_states.0..12 (optimum's CLIPTextModel with output_hidden_states)
  text_encoder_2/  OpenCLIP ViT-bigG/14's text transformer (32 layers, width 1280, 20 heads, MLP 5120, GELU) with its
                   bias-free 1280x1280 projection (695 M parameters): text_embeds, last_hidden_state, hidden_states.0..32
  vae_decoder/, vae_encoder/  diffusers AutoencoderKL with the SDXL VAE's config (scaling_factor 0.13025)
  tokenizer/, tokenizer_2/    the real CLIP vocab.json and merges.txt from --clip; tokenizer_2 pads with "!" (id 0)
  scheduler/       stable-diffusion-xl-base-1.0's EulerDiscreteScheduler config
  --refiner DIR    also the refiner: its UNet (stable-diffusion-xl-refiner-1.0's config, 2.3 B parameters; 1280-wide
                   encoder_hidden_states, time_ids [B,5]), and hard links to the base's text_encoder_2, tokenizer_2 and VAE

The UNets and the bigG encoder are built on torch's meta device and exported with zero-stride parameters, then their
weight files are filled with random values one tensor at a time (real_size_export.py): torch's export of the UNet with
real fp32 weights would hold about 1.5x its 10.3 GB. Each component runs in its own process (--part).

    PYTHONPATH=/tmp/diffusers/src:/tmp/hfhub/src /usr/bin/python3 tools/sdxl_size/build_random_sdxl_export.py \
        --out /tmp/sdxl-random [--refiner /tmp/sdxl-refiner-random] [--clip ../shared/clip] [--skip unet ...]
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))
from real_size_export import OnMeta, folder_bytes, link_tree, randomize, weight_scales, zero_stride_parameters  # noqa: E402
from sd15_size.build_random_sd15_export import OPSET, VAE_CONFIG, copy_tokenizer, import_diffusers, write_json  # noqa: E402

SEED = 2024

# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json (heads = channels / 64 per level, as single_file_utils derives).
UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.19.0.dev0",
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "use_linear_projection": True,
}

# stabilityai/stable-diffusion-xl-refiner-1.0 unet/config.json: 384-wide, 4 levels, 4 transformer layers, bigG only.
REFINER_UNET_CONFIG = {
    **UNET_CONFIG,
    "attention_head_dim": [6, 12, 24, 24],
    "block_out_channels": [384, 768, 1536, 1536],
    "cross_attention_dim": 1280,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "projection_class_embeddings_input_dim": 2560,
    "transformer_layers_per_block": 4,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
}

# madebyollin/sdxl-vae / stable-diffusion-xl-base-1.0 vae/config.json: SD's AutoencoderKL at 1024 px, SDXL's scale.
SDXL_VAE_CONFIG = {**VAE_CONFIG, "_diffusers_version": "0.20.0.dev0", "force_upcast": True, "sample_size": 1024,
                   "scaling_factor": 0.13025}

CLIP_L = {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "vocab_size": 49408, "hidden_size": 768,
          "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 77,
          "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05, "bos_token_id": 49406, "eos_token_id": 49407,
          "pad_token_id": 1, "projection_dim": 768}
CLIP_BIGG = {**CLIP_L, "architectures": ["CLIPTextModelWithProjection"], "hidden_size": 1280, "intermediate_size": 5120,
             "num_hidden_layers": 32, "num_attention_heads": 20, "hidden_act": "gelu", "projection_dim": 1280}

# stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json (the refiner's is the same).
from build_sdxl_test_model import SCHEDULER  # noqa: E402


class ClipLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        width = cfg["hidden_size"]
        self.heads, self.quick = cfg["num_attention_heads"], cfg["hidden_act"] == "quick_gelu"
        self.ln1 = nn.LayerNorm(width, eps=cfg["layer_norm_eps"])
        self.q, self.k, self.v, self.o = (nn.Linear(width, width) for _ in range(4))
        self.ln2 = nn.LayerNorm(width, eps=cfg["layer_norm_eps"])
        self.fc1 = nn.Linear(width, cfg["intermediate_size"])
        self.fc2 = nn.Linear(cfg["intermediate_size"], width)

    def forward(self, h, mask):
        b, s, width = h.shape
        x = self.ln1(h)

        def split(t):
            return t.reshape(b, s, self.heads, width // self.heads).transpose(1, 2)

        q = split(self.q(x)) * (width // self.heads) ** -0.5
        a = torch.softmax(q @ split(self.k(x)).transpose(-1, -2) + mask, dim=-1) @ split(self.v(x))
        h = h + self.o(a.transpose(1, 2).reshape(b, s, width))
        x = self.fc1(self.ln2(h))
        x = x * torch.sigmoid(1.702 * x) if self.quick else F.gelu(x)
        return h + self.fc2(x)


class ClipText(nn.Module):
    """CLIP's text transformer (pre-norm, causal), with every layer's input/output as hidden_states.N and, with
    projection_dim set for CLIPTextModelWithProjection, the projected EOS state as text_embeds."""

    def __init__(self, cfg, projection: bool):
        super().__init__()
        width = cfg["hidden_size"]
        self.token = nn.Embedding(cfg["vocab_size"], width)
        self.position = nn.Embedding(cfg["max_position_embeddings"], width)
        self.layers = nn.ModuleList(ClipLayer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.final = nn.LayerNorm(width, eps=cfg["layer_norm_eps"])
        self.projection = nn.Linear(width, cfg["projection_dim"], bias=False) if projection else None

    def forward(self, input_ids):
        ids = input_ids.long()
        s = ids.shape[1]
        h = self.token(ids) + self.position(torch.arange(s, device=ids.device))[None]
        mask = torch.full((s, s), float("-inf")).triu(1)[None, None]
        states = [h]
        for layer in self.layers:
            h = layer(h, mask)
            states.append(h)
        last = self.final(h)
        pooled = last[torch.arange(last.shape[0]), ids.argmax(dim=-1)]  # at the first EOS (the highest id)
        if self.projection is not None:
            return (self.projection(pooled), last, *states)
        return (last, pooled, *states)


def export_text_encoder(out: Path, folder: str, cfg, projection: bool, seed: int, big: bool | None = None) -> None:
    """Encoders under 2 GB (CLIP-L, OpenCLIP-H) are built with real weights; bigG (2.8 GB) through the meta-device path."""
    big = projection if big is None else big
    torch.manual_seed(seed)
    if big:
        with OnMeta():
            net = ClipText(cfg, projection).eval()
        scales = weight_scales(net)
        zero_stride_parameters(net)
    else:
        net = ClipText(cfg, projection).eval()
        nn.init.normal_(net.token.weight, std=0.02)
        nn.init.normal_(net.position.weight, std=0.01)
    layers = cfg["num_hidden_layers"]
    hidden = [f"hidden_states.{i}" for i in range(layers + 1)]
    first = ["text_embeds", "last_hidden_state"] if projection else ["last_hidden_state", "pooler_output"]
    axes = {"input_ids": {0: "batch", 1: "sequence"}, first[0]: {0: "batch"}, first[1]: {0: "batch"},
            **{n: {0: "batch", 1: "sequence"} for n in hidden}}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    ids = torch.tensor([[49406, 320, 1929, 49407] + [49407] * 73], dtype=torch.int32)
    target = out / folder / "model.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(net, (ids,), str(target), input_names=["input_ids"], output_names=[*first, *hidden],
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)
    if big:
        tensors, params = randomize(target, scales, seed)
        print(f"{folder}: {tensors} weight tensors randomised, {params / 1e6:.0f} M parameters", flush=True)
        check_randomised(net, params)
    write_json(target.parent / "config.json", {k: v for k, v in cfg.items()})


def check_randomised(model: nn.Module, randomised: int) -> None:
    """Every weight but the norms' must have been given random values (a shared or missed initializer would not be)."""
    expected = sum(p.numel() for m in model.modules() if not isinstance(m, (nn.GroupNorm, nn.LayerNorm))
                   for p in m.parameters(recurse=False))
    if randomised != expected:
        raise RuntimeError(f"randomised {randomised} parameters, expected {expected}: the export shares or renamed weights")


class SdxlUnet(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        added = {"text_embeds": text_embeds, "time_ids": time_ids}
        return self.inner(sample, timestep, encoder_hidden_states, added_cond_kwargs=added, return_dict=False)[0]


def export_unet(out: Path, config: dict, seed: int) -> None:
    UNet2DConditionModel = import_diffusers().UNet2DConditionModel
    with OnMeta():
        unet = UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")}).eval()
    count = sum(p.numel() for p in unet.parameters())
    wrapper = SdxlUnet(unet)
    scales = weight_scales(wrapper)
    zero_stride_parameters(wrapper)
    target = out / "unet" / "model.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    time_ids = 6 if config["cross_attention_dim"] == 2048 else 5
    # 16x16 latents keep the trace quick (the deepest level is 4x4); every spatial dim is dynamic.
    args = (torch.randn(2, 4, 16, 16), torch.tensor([999, 999], dtype=torch.int64),
            torch.randn(2, 77, config["cross_attention_dim"]), torch.randn(2, 1280),
            torch.tensor([[1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0][:time_ids]] * 2))
    started = time.monotonic()
    with torch.no_grad():
        torch.onnx.export(wrapper, args, str(target),
                          input_names=["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"],
                          output_names=["out_sample"],
                          dynamic_axes={"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
                                        "encoder_hidden_states": {0: "batch", 1: "sequence"},
                                        "text_embeds": {0: "batch"}, "time_ids": {0: "batch"},
                                        "out_sample": {0: "batch", 2: "height", 3: "width"}},
                          opset_version=OPSET, do_constant_folding=True)
    print(f"unet: {count / 1e9:.3f} B parameters, exported in {time.monotonic() - started:.0f} s", flush=True)
    tensors, params = randomize(target, scales, seed)
    print(f"unet: {tensors} weight tensors randomised ({params / 1e9:.3f} B parameters)", flush=True)
    check_randomised(unet, params)
    write_json(target.parent / "config.json", config)


def export_vae(out: Path) -> None:
    from sd15_size.build_random_sd15_export import build_vae
    build_vae(out, SDXL_VAE_CONFIG, SEED + 3)


def tokenizers(out: Path, clip: Path) -> None:
    import json
    import shutil
    copy_tokenizer(out, clip)
    shutil.copytree(out / "tokenizer", out / "tokenizer_2", dirs_exist_ok=True)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = out / "tokenizer_2" / name
        config = json.loads(path.read_text())
        config["pad_token"] = "!"  # OpenCLIP's tokenizer pads with "!" (id 0), as stable-diffusion-xl-base-1.0's tokenizer_2
        path.write_text(json.dumps(config, indent=2) + "\n")


def model_index(refiner: bool) -> dict:
    onnx_model = ["diffusers", "OnnxRuntimeModel"]
    return {"_class_name": "ORTStableDiffusionXLImg2ImgPipeline" if refiner else "ORTStableDiffusionXLPipeline",
            "_diffusers_version": "0.31.0", "force_zeros_for_empty_prompt": not refiner,
            "requires_aesthetics_score": refiner, "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": [None, None] if refiner else onnx_model, "text_encoder_2": onnx_model,
            "tokenizer": [None, None] if refiner else ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"], "unet": onnx_model, "vae_decoder": onnx_model,
            "vae_encoder": onnx_model}


PARTS = {
    "text_encoder": lambda a: export_text_encoder(a.out, "text_encoder", CLIP_L, False, SEED),
    "text_encoder_2": lambda a: export_text_encoder(a.out, "text_encoder_2", CLIP_BIGG, True, SEED + 1),
    "vae": lambda a: export_vae(a.out),
    "unet": lambda a: export_unet(a.out, UNET_CONFIG, SEED + 2),
    "refiner_unet": lambda a: export_unet(a.refiner, REFINER_UNET_CONFIG, SEED + 4),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the base's folder (outside the repository)")
    parser.add_argument("--refiner", type=Path, help="also build the refiner into this folder")
    parser.add_argument("--clip", type=Path, default=HERE.parents[3] / "shared" / "clip",
                        help="folder with the real CLIP vocab.json and merges.txt")
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(PARTS), help="components already built")
    parser.add_argument("--part", choices=sorted(PARTS), help="build one component in this process (internal)")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.refiner = args.refiner.resolve() if args.refiner else None
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.part:
        PARTS[args.part](args)
        return

    args.out.mkdir(parents=True, exist_ok=True)
    tokenizers(args.out, args.clip)
    write_json(args.out / "scheduler" / "scheduler_config.json", SCHEDULER)
    write_json(args.out / "model_index.json", model_index(False))
    parts = ["text_encoder", "text_encoder_2", "vae", "unet"] + (["refiner_unet"] if args.refiner else [])
    for part in [p for p in parts if p not in args.skip]:
        started = time.monotonic()
        command = [sys.executable, str(HERE), "--out", str(args.out), "--part", part]
        if args.refiner:
            command += ["--refiner", str(args.refiner)]
        subprocess.run(command, check=True)
        print(f"{part}: {time.monotonic() - started:.0f} s", flush=True)
    print(f"{args.out}: {folder_bytes(args.out) / 2**30:.2f} GiB, unet/ holds {len(list((args.out / 'unet').iterdir()))} files")
    if args.refiner:
        for shared in ("text_encoder_2", "tokenizer_2", "vae_decoder", "vae_encoder", "scheduler"):
            link_tree(args.out / shared, args.refiner / shared)
        write_json(args.refiner / "model_index.json", model_index(True))
        print(f"{args.refiner}: {folder_bytes(args.refiner) / 2**30:.2f} GiB (text_encoder_2 and the VAE hard-linked)")


if __name__ == "__main__":
    main()
