#!/usr/bin/env python3
"""A Stable-Diffusion-1.5-architecture ONNX folder with random (seeded) weights at the real sizes.

For measuring the engine on real-size models where the real weights cannot be had (no network): load time, time
per step, memory. The pictures are noise; the tensors, graphs and file layout are SD 1.5's:

  unet/          diffusers UNet2DConditionModel, SD 1.5's config (860 M parameters, 3.4 GB fp32), exported by
                 torch.onnx.export with its weights as external data, one file per tensor, as torch writes it
                 for a model over 2 GB (the layout the issue measured: several hundred files)
  text_encoder/  a CLIP text transformer at CLIP ViT-L/14's text size (12 layers, width 768, 12 heads, 77
                 positions, vocabulary 49408, causal mask, quick-GELU, final layer norm), written in plain torch
                 because transformers is not installed here; outputs last_hidden_state and pooler_output
  vae_decoder/   diffusers AutoencoderKL's post_quant_conv + decoder, SD 1.5's config
  vae_encoder/   diffusers AutoencoderKL's encoder + quant_conv (output latent_parameters, as optimum writes it)
  tokenizer/     the real CLIP tokenizer files, copied from --clip (never committed to LocalDiffusion)
  scheduler/     SD 1.5's scheduler_config.json (PNDM, scaled_linear 0.00085-0.012, skip_prk_steps)

Every component is exported in its own process (--part) so peak memory stays that of one model (the UNet: about
3.4 GB of weights plus torch's export copies; under 12 GB).

    PYTHONPATH=/tmp/diffusers-0.31.0/src:/tmp/hfhub-0.25.2/src /usr/bin/python3 \
        tools/sd15_size/build_random_sd15_export.py --out /tmp/sd15-random [--clip ../shared/clip]
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

OPSET = 17
SEED = 1234

UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.31.0",
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

VAE_CONFIG = {
    "_class_name": "AutoencoderKL",
    "_diffusers_version": "0.31.0",
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}

TEXT_CONFIG = {
    "architectures": ["CLIPTextModel"],
    "model_type": "clip_text_model",
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-05,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 1,
}

# SD 1.5's scheduler/scheduler_config.json (stable-diffusion-v1-5/stable-diffusion-v1-5).
SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}

MODEL_INDEX = {
    "_class_name": "OnnxStableDiffusionPipeline",
    "_diffusers_version": "0.31.0",
    "feature_extractor": [None, None],
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["diffusers", "OnnxRuntimeModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "OnnxRuntimeModel"],
    "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
    "vae_encoder": ["diffusers", "OnnxRuntimeModel"],
}


def import_diffusers():
    """diffusers imports safetensors at module level but needs it only to read and write checkpoint files, which
    this script never does; Debian has no python3-safetensors, so a stand-in that refuses every use fills in."""
    try:
        import safetensors  # noqa: F401
    except ImportError:
        import importlib.machinery
        import types

        def refuse(*_args, **_kwargs):
            raise RuntimeError("safetensors is not installed (a stand-in for diffusers' import only)")

        stub = types.ModuleType("safetensors")
        stub.safe_open = refuse
        stub.torch = types.ModuleType("safetensors.torch")
        stub.torch.__getattr__ = lambda name: refuse
        stub.__getattr__ = lambda name: refuse
        stub.__spec__ = importlib.machinery.ModuleSpec("safetensors", None)
        stub.torch.__spec__ = importlib.machinery.ModuleSpec("safetensors.torch", None)
        sys.modules["safetensors"] = stub
        sys.modules["safetensors.torch"] = stub.torch
    import diffusers
    return diffusers


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------- text encoder
def build_text_encoder(out: Path) -> None:
    import torch
    from torch import nn

    cfg = TEXT_CONFIG
    width, heads, layers = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(width, eps=cfg["layer_norm_eps"])
            self.q = nn.Linear(width, width)
            self.k = nn.Linear(width, width)
            self.v = nn.Linear(width, width)
            self.o = nn.Linear(width, width)
            self.ln2 = nn.LayerNorm(width, eps=cfg["layer_norm_eps"])
            self.fc1 = nn.Linear(width, cfg["intermediate_size"])
            self.fc2 = nn.Linear(cfg["intermediate_size"], width)

        def forward(self, h, mask):
            b, s, _ = h.shape
            x = self.ln1(h)

            def split(t):
                return t.reshape(b, s, heads, width // heads).transpose(1, 2)

            q = split(self.q(x)) * (width // heads) ** -0.5
            a = torch.softmax(q @ split(self.k(x)).transpose(-1, -2) + mask, dim=-1) @ split(self.v(x))
            h = h + self.o(a.transpose(1, 2).reshape(b, s, width))
            x = self.fc1(self.ln2(h))
            x = x * torch.sigmoid(1.702 * x)  # quick_gelu, as CLIP
            return h + self.fc2(x)

    class ClipText(nn.Module):
        def __init__(self):
            super().__init__()
            self.token = nn.Embedding(cfg["vocab_size"], width)
            self.position = nn.Embedding(cfg["max_position_embeddings"], width)
            nn.init.normal_(self.token.weight, std=0.02)  # CLIP's initialiser
            nn.init.normal_(self.position.weight, std=0.01)
            self.layers = nn.ModuleList(Layer() for _ in range(layers))
            self.final = nn.LayerNorm(width, eps=cfg["layer_norm_eps"])

        def forward(self, input_ids):
            ids = input_ids.long()
            s = ids.shape[1]
            h = self.token(ids) + self.position(torch.arange(s, device=ids.device))[None]
            mask = torch.full((s, s), float("-inf")).triu(1)[None, None]
            for layer in self.layers:
                h = layer(h, mask)
            h = self.final(h)
            pooled = h[torch.arange(h.shape[0]), ids.argmax(dim=-1)]  # at the EOS token (the highest id)
            return h, pooled

    torch.manual_seed(SEED)
    net = ClipText().eval()
    ids = torch.tensor([[49406, 320, 1929, 49407] + [49407] * 73], dtype=torch.int32)
    target = out / "text_encoder" / "model.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(net, (ids,), str(target), input_names=["input_ids"],
                          output_names=["last_hidden_state", "pooler_output"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "last_hidden_state": {0: "batch", 1: "sequence"},
                                        "pooler_output": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True)
    write_json(target.parent / "config.json", TEXT_CONFIG)


# ---------------------------------------------------------------------------------------------- UNet
def build_unet(out: Path) -> None:
    import torch
    UNet2DConditionModel = import_diffusers().UNet2DConditionModel

    torch.manual_seed(SEED + 1)
    config = {k: v for k, v in UNET_CONFIG.items() if not k.startswith("_")}
    unet = UNet2DConditionModel(**config).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, sample, timestep, encoder_hidden_states):
            return self.inner(sample, timestep, encoder_hidden_states, return_dict=False)[0]

    target = out / "unet" / "model.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Small latents keep the trace quick; every spatial dim is dynamic.
    sample = torch.randn(2, 4, 16, 16)
    timestep = torch.tensor([981, 981], dtype=torch.int64)
    hidden = torch.randn(2, 77, 768)
    with torch.no_grad():
        # Over 2 GB, torch 1.13 writes each initializer to its own file next to model.onnx.
        torch.onnx.export(Wrapper(unet), (sample, timestep, hidden), str(target),
                          input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                          dynamic_axes={"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
                                        "encoder_hidden_states": {0: "batch", 1: "sequence"},
                                        "out_sample": {0: "batch", 2: "height", 3: "width"}},
                          opset_version=OPSET, do_constant_folding=True)
    write_json(target.parent / "config.json", UNET_CONFIG)


# ---------------------------------------------------------------------------------------------- VAE
def build_vae(out: Path, vae_config: dict = VAE_CONFIG, seed: int = SEED + 2) -> None:
    """The VAE's two halves; SDXL's builder passes its own config (same architecture, SDXL's scaling factor)."""
    import torch
    AutoencoderKL = import_diffusers().AutoencoderKL

    torch.manual_seed(seed)
    config = {k: v for k, v in vae_config.items() if not k.startswith("_")}
    vae = AutoencoderKL(**config).eval()

    class Decoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, latent_sample):
            return self.inner.decode(latent_sample, return_dict=False)[0]

    class Encoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, sample):
            return self.inner.quant_conv(self.inner.encoder(sample))

    for name in ("vae_decoder", "vae_encoder"):
        (out / name).mkdir(parents=True, exist_ok=True)
        write_json(out / name / "config.json", vae_config)
    with torch.no_grad():
        torch.onnx.export(Decoder(vae), (torch.randn(1, 4, 16, 16),), str(out / "vae_decoder" / "model.onnx"),
                          input_names=["latent_sample"], output_names=["sample"],
                          dynamic_axes={"latent_sample": {0: "batch", 2: "height", 3: "width"},
                                        "sample": {0: "batch", 2: "image_height", 3: "image_width"}},
                          opset_version=OPSET, do_constant_folding=True)
        torch.onnx.export(Encoder(vae), (torch.randn(1, 3, 128, 128),), str(out / "vae_encoder" / "model.onnx"),
                          input_names=["sample"], output_names=["latent_parameters"],
                          dynamic_axes={"sample": {0: "batch", 2: "image_height", 3: "image_width"},
                                        "latent_parameters": {0: "batch", 2: "height", 3: "width"}},
                          opset_version=OPSET, do_constant_folding=True)


# ---------------------------------------------------------------------------------------------- the rest
def copy_tokenizer(out: Path, clip: Path) -> None:
    target = out / "tokenizer"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        source = clip / name
        if not source.is_file():
            sys.exit(f"--clip {clip}: {name} is missing (the real CLIP tokenizer files are needed)")
        shutil.copyfile(source, target / name)
    special = {"content": None, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    write_json(target / "special_tokens_map.json", {
        "bos_token": {**special, "content": "<|startoftext|>"},
        "eos_token": {**special, "content": "<|endoftext|>"},
        "pad_token": "<|endoftext|>",
        "unk_token": {**special, "content": "<|endoftext|>"},
    })
    write_json(target / "tokenizer_config.json", {
        "add_prefix_space": False, "bos_token": "<|startoftext|>", "clean_up_tokenization_spaces": True,
        "do_lower_case": True, "eos_token": "<|endoftext|>", "errors": "replace", "model_max_length": 77,
        "pad_token": "<|endoftext|>", "tokenizer_class": "CLIPTokenizer", "unk_token": "<|endoftext|>",
    })


PARTS = {"text_encoder": build_text_encoder, "unet": build_unet, "vae": build_vae}


def main() -> None:
    here = Path(__file__).resolve()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder (outside the repository)")
    parser.add_argument("--clip", type=Path, default=here.parents[3] / "shared" / "clip",
                        help="folder with the real CLIP vocab.json and merges.txt")
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(PARTS), help="components already built")
    parser.add_argument("--part", choices=sorted(PARTS), help="build one component in this process (internal)")
    args = parser.parse_args()
    out = args.out.resolve()

    if args.part:
        PARTS[args.part](out)
        return

    out.mkdir(parents=True, exist_ok=True)
    copy_tokenizer(out, args.clip)
    write_json(out / "scheduler" / "scheduler_config.json", SCHEDULER_CONFIG)
    write_json(out / "model_index.json", MODEL_INDEX)
    for part in [p for p in ("text_encoder", "vae", "unet") if p not in args.skip]:
        started = time.monotonic()
        subprocess.run([sys.executable, str(here), "--out", str(out), "--part", part], check=True)
        print(f"{part}: {time.monotonic() - started:.0f} s", flush=True)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    files = sum(1 for f in (out / "unet").iterdir())
    print(f"{out}: {total / 2**30:.2f} GiB, unet/ holds {files} files")


if __name__ == "__main__":
    main()
